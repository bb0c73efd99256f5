#!/usr/bin/env bash
# Integration test: sd_notify READY/STATUS/WATCHDOG/STOPPING and socket activation on fd 3.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py systemd
