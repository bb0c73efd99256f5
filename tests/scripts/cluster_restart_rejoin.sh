#!/usr/bin/env bash
# Integration test: nodes restarted from their data dirs rejoin with their old term and log.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py restart_rejoin
