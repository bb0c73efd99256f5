#!/usr/bin/env bash
# Integration test: a proposal sent right after campaign on a follower waits out the election and commits; client connections are not logged at info.
# Real raftd processes on loopback; see tests/integration/waits_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/waits_test.py election_wait
