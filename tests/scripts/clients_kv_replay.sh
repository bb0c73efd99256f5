#!/usr/bin/env bash
# Integration test: the KV example keeps working after 100 entries on a default-config node (issue 19, bug 1).
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py kv_replay
