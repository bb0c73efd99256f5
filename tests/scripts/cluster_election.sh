#!/usr/bin/env bash
# Integration test: a 3-node cluster elects one leader; proposals on every node commit; SIGTERM exits 0.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py election
