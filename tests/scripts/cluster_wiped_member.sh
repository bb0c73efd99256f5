#!/usr/bin/env bash
# Integration test: a new cluster bootstraps once all members run (one starting late); a
# member whose data dir was wiped refuses to bootstrap again, exits non-zero with the line
# docs/operations.md documents, and the cluster keeps working.
# Real raftd processes on loopback; see tests/integration/cluster_test.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/integration/cluster_test.py wiped_member
