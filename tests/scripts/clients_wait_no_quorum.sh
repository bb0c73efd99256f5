#!/usr/bin/env bash
# Integration test: without a quorum, requests wait timeout_ms then answer UNAVAILABLE; beyond leader_wait_requests BUSY; nothing is appended.
# Real raftd processes on loopback; see tests/integration/waits_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/waits_test.py no_quorum
