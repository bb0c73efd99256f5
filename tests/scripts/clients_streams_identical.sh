#!/usr/bin/env bash
# Integration test: pipelined proposers on all nodes: per-connection order, identical streams everywhere.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py streams_identical
