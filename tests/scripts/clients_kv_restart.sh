#!/usr/bin/env bash
# Integration test: the KV example survives a node restart, answers linearizable reads, restores from its snapshot.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py kv_restart
