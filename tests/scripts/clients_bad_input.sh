#!/usr/bin/env bash
# Integration test: oversized lengths, garbage, half frames, connect storms and a non-reading client against a real node.
# Real raftd processes on loopback; see tests/integration/clients_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/clients_test.py bad_input
