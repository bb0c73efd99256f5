#!/usr/bin/env bash
# The README's quick start and KV walkthrough commands, in the README's order, against the
# cluster daemon/demo/run.sh (`make run`) starts; kv.py must not crash on `raftctl propose
# hello`'s entry (issue 16). The harness is tests/scripts/lib/readme_walkthrough.py.
set -euo pipefail
[ -x "${RAFTD_BUILD:-build/release}/bin/raftctl" ] || { echo "raftctl is not built"; exit 1; }
/usr/bin/python3 -c 'import msgpack' 2>/dev/null || { echo "python3-msgpack is not installed"; exit 77; }
exec "$(dirname "$0")/lib/python_harness.sh" readme_walkthrough.py
