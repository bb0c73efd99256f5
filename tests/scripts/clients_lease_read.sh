#!/usr/bin/env bash
# Integration test: read_index with lease answers from the leader's lease with the followers paused; after the lease it is refused.
# Real raftd processes on loopback; see tests/integration/waits_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/waits_test.py lease_read
