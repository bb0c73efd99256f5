#!/usr/bin/env bash
# Integration test: startup errors are one line on stderr and a non-zero exit.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py startup_errors
