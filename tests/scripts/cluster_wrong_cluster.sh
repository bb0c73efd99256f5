#!/usr/bin/env bash
# Integration test: peers of another cluster or with an unexpected node id are refused.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py wrong_cluster
