#!/usr/bin/env bash
# The Python client (clients/python) against fake_raftd: every op, pipelining, the stream
# with snapshot-first, typed errors.
set -euo pipefail
B=${RAFTD_BUILD:-build/release}
[ -x "$B/tests/fake_raftd" ] || { echo "missing $B/tests/fake_raftd (build it first)"; exit 1; }
/usr/bin/python3 -c 'import msgpack' 2>/dev/null || { echo "python3-msgpack is not installed"; exit 77; }
dir=$(mktemp -d)
fake_pid=
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$B/tests/fake_raftd" "$dir/raftd.sock" > "$dir/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do grep -q ready "$dir/fake.out" 2>/dev/null && break; sleep 0.05; done
RAFTD_TEST_SOCKET=$dir/raftd.sock /usr/bin/python3 clients/python/test_client.py
