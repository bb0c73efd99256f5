#!/usr/bin/env bash
# Integration test: the client conformance list (tests/clients/scenarios.txt) run by the C++,
# Python and Go clients against one real 3-node cluster; prints the scenario x client table
# (its "@@ " lines are shown by tests/run-suites). Any cell that is not "pass" fails it.
set -euo pipefail
cd "$(dirname "$0")/../.."
for d in build/release/tests/client_driver_cpp build/release/tests/client_driver_go; do
    [ -x "$d" ] || { echo "no $d: build with 'make' (the Go driver needs 'make deps')"; exit 1; }
done
exec /usr/bin/python3 tests/clients/conformance.py
