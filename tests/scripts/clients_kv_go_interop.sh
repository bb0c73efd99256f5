#!/usr/bin/env bash
# Integration test: kv-go (clients/examples/kv-go) and kv.py share one 3-node cluster; each
# reads what the other wrote, both dump the same state, snapshots restore across them.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/release/bin/kv-go ] || { echo "no build/release/bin/kv-go: run make (after make deps)"; exit 1; }
exec /usr/bin/python3 tests/clients/kv_interop.py
