#!/usr/bin/env bash
# Integration test: exactly-once proposals across a killed and a stopped leader: no request
# applied twice, each answered with its one index. See tests/integration/exactly_once_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/exactly_once_test.py
