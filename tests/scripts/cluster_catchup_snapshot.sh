#!/usr/bin/env bash
# Integration test: a follower stopped past a compaction catches up by InstallSnapshot.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py catchup_snapshot
