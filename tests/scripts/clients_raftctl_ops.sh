#!/usr/bin/env bash
# Integration test: every raftctl command (C++ client) on a follower, with exit codes.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py raftctl_ops
