#!/usr/bin/env bash
# Unit tests of the nemesis suite's checkers (tests/nemesis/checker.py): linearizability on
# small hand-made histories (linearizable and not) and the commit-stream invariants.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/nemesis/test_checker.py -v
