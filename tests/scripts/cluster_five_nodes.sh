#!/usr/bin/env bash
# Integration test: a 5-node cluster survives the loss of two nodes (one the leader).
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py five_nodes
