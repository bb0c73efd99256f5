#!/usr/bin/env bash
# Integration test: with no config raftd runs a single-node cluster in ./raftd-data.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py defaults
