#!/usr/bin/env bash
# Integration test: SIGKILL of the leader elects a new one and no acknowledged entry is lost.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py leader_kill
