#!/usr/bin/env bash
# raftbench works against a real raftd (no timing asserted: timings belong to make bench):
# closed loop with --count, open loop with --rate, ping against raftd and against its own
# raw ping-pong server, the JSON fields scripts rely on, CPU charged to the raftd found
# through SO_PEERCRED, and --wait-leader.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${RAFTD_BUILD:-build/release}
RAFTD=$build/bin/raftd RAFTBENCH=$build/bin/raftbench
for b in "$RAFTD" "$RAFTBENCH"; do [ -x "$b" ] || { echo "no $b; build first"; exit 1; }; done
BENCH_TMP=$(mktemp -d)
. tests/bench/cluster.sh
RAW_PID=""
cleanup() {
    stop_cluster
    [ -z "$RAW_PID" ] || { kill "$RAW_PID" 2>/dev/null; wait "$RAW_PID" 2>/dev/null || true; }
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
check() {  # $1 = description, $2 = JSON, $3 = python condition on r
    /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" ||
        bad "$1: $3 does not hold for $2"
}

start_cluster 1 rb
[ "$LEADER_SOCKET" = "$SOCKETS" ] || bad "--wait-leader printed '$LEADER_SOCKET', want '$SOCKETS'"

out=$("$RAFTBENCH" --json --sockets "$SOCKETS" --clients 4 --pipeline 4 --size 100 --count 400)
echo "$out"
check "closed loop" "$out" 'r["ops"] == 400 and r["errors"] == 0 and r["clients"] == 4 and r["size"] == 100'
check "closed loop" "$out" '0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]'
check "closed loop" "$out" 'r["ops_per_sec"] > 0 and abs(r["mb_per_sec"] - r["ops_per_sec"] * 100 / 1e6) < 0.01'
check "closed loop" "$out" 'r["server_cpu_s"] >= 0 and r["cpu_us_per_op"] >= 0'
# The human table, and raftd's process found through SO_PEERCRED (CPU ticks are too coarse
# to assert a non-zero amount for a short run).
table=$("$RAFTBENCH" --sockets "$SOCKETS" --count 50)
echo "$table"
grep -q '^propose ' <<<"$table" || bad "no table row: $table"
grep -q '50 ok, 0 errors.* over 1 process(es)' <<<"$table" || bad "raftd's pid was not found: $table"

out=$("$RAFTBENCH" --json --sockets "$SOCKETS" --clients 2 --rate 200 --count 100)
echo "$out"
check "open loop" "$out" 'r["ops"] == 100 and r["errors"] == 0 and r["rate"] == 200'
# 100 requests due at 200/s take at least the half second of the schedule.
check "open loop" "$out" 'r["seconds"] >= 0.45'

out=$("$RAFTBENCH" --json --op ping --sockets "$SOCKETS" --clients 2 --count 300)
check "ping" "$out" 'r["ops"] == 300 and r["errors"] == 0 and r["size"] == 0'

"$RAFTBENCH" --serve-raw "$BENCH_TMP/raw.sock" &
RAW_PID=$!
for _ in $(seq 1 100); do [ -S "$BENCH_TMP/raw.sock" ] && break; sleep 0.05; done
out=$("$RAFTBENCH" --json --op ping --sockets "$BENCH_TMP/raw.sock" --clients 3 --pipeline 5 --count 3000)
check "raw ping-pong" "$out" 'r["ops"] == 3000 and r["errors"] == 0'

# A proposal raftd refuses is counted under its code, never retried: 2 MiB > max_entry.
if out=$("$RAFTBENCH" --json --sockets "$SOCKETS" --size 1048577 --count 3 2>&1); then
    bad "oversized proposals reported success: $out"
else
    check "oversized" "$(tail -n1 <<<"$out")" 'r["ops"] == 0 and r["error_codes"].get("TOO_LARGE") == 3'
fi
[ $fail -eq 0 ] && echo "raftbench: all checks passed"
exit $fail
