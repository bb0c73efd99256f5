#!/usr/bin/env bash
# Integration test: the Python apply loop (raftd_client.apply) while its node is SIGKILLed and restarted: resubscribes, snapshots, state equals the log.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py apply_loop_restart
