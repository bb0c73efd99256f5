#!/usr/bin/env bash
# Integration test: allowed_gids admits a client by its primary group; an unlisted one is disconnected.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py allowed_gids
