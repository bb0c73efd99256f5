#!/usr/bin/env bash
# Integration test: a node added as a learner, started with --join and promoted catches up.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py join
