#!/usr/bin/env bash
# Integration test: the C++ apply loop (raftd-counter, clients/examples/counter-cpp) on a real
# 3-node cluster whose nodes are SIGKILLed and restarted under it while proposals flow; the
# applied state must equal the committed log, with a snapshot restored mid-stream and by a
# fresh replica. See tests/integration/cpp_apply_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${RAFTD_BUILD:-build/release}
for f in "$B/bin/raftd" "$B/bin/raftd-counter"; do
    [ -x "$f" ] || { echo "missing $f (build it first)"; exit 1; }
done
exec /usr/bin/python3 tests/integration/cpp_apply_test.py
