#!/usr/bin/env bash
# Integration test: SIGHUP reopens the log file; SIGTERM under load exits 0 and loses no
# acknowledged entry.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py signals
