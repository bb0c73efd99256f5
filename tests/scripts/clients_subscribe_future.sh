#!/usr/bin/env bash
# Integration test: subscribe with from beyond the last index + 1 waits and starts exactly at from.
# Real raftd processes on loopback; see tests/integration/waits_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/waits_test.py subscribe_future
