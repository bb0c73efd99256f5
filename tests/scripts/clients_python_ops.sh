#!/usr/bin/env bash
# Integration test: every operation from the Python client on a follower of a 3-node cluster.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py python_ops
