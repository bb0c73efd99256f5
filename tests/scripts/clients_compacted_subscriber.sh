#!/usr/bin/env bash
# Integration test: after a snapshot compacts the log, a subscriber from 1 gets the snapshot then the entries.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py compacted_subscriber
