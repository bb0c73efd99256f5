#!/usr/bin/env bash
# Memory after a restart does not follow the size of the log (issue 20): a single node with a
# 4 MiB entry cache and 4 MiB segments is restarted with a 48 MiB and then a 192 MiB log; the
# peak resident memory of the restarted process (VmHWM, until it answers as leader) must not
# grow with the log, and must stay near the cache's budget. Before the fix raft read the whole
# committed log into memory at start-up to find its configuration (peak above 200 MiB here).
# Timing is not asserted: tests/bench/restart.sh reports it under `make bench-restart`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(RESTART_SIZES_MB="48 192" RESTART_CACHE=4MiB RESTART_SEGMENT=4MiB RESTART_COLD=0 \
    bash tests/bench/restart.sh 2>/dev/null)
echo "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
assert len(rows) == 2, rows
small, big = rows
assert big["wal_mib"] >= 3 * small["wal_mib"], f"the log did not grow: {rows}"
growth = big["hwm_kb"] - small["hwm_kb"]
print(f"log {small['wal_mib']} -> {big['wal_mib']} MiB: peak RSS {small['hwm_kb']} -> {big['hwm_kb']} KiB")
assert growth < 8 * 1024, f"peak RSS grew by {growth} KiB with the log"
assert big["hwm_kb"] < 48 * 1024, f"peak RSS {big['hwm_kb']} KiB with a 4 MiB cache"
PY
