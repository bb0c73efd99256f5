#!/usr/bin/env bash
# Integration test: leader killed during proposals: every acknowledged entry in every stream exactly once.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py kill_leader_stream
