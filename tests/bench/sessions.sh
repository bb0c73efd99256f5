#!/usr/bin/env bash
# Exactly-once overhead (docs/performance.md, "Session keys"): raftbench proposals with and
# without a session key on the same 3-node cluster, alternated so that a noisy machine
# affects both alike. Prints each run and the ratio of the means.
# Knobs: SESSIONS_PAIRS (alternated pairs, default 4), SESSIONS_SECONDS (per run, 3),
# SESSIONS_CLIENTS (64), SESSIONS_PIPELINE (8), SESSIONS_SIZE (256).
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${SESSIONS_PAIRS:-4}
SECS=${SESSIONS_SECONDS:-3}
CLIENTS=${SESSIONS_CLIENTS:-64}
PIPE=${SESSIONS_PIPELINE:-8}
SIZE=${SESSIONS_SIZE:-256}
BENCH_TMP=$(mktemp -d)
. tests/bench/cluster.sh
trap 'stop_cluster; rm -rf "$BENCH_TMP"' EXIT
start_cluster 3 sessbench
run() {  # $1 = extra flag; prints requests per second
    "$RAFTBENCH" --sockets "$SOCKETS" --clients "$CLIENTS" --pipeline "$PIPE" --size "$SIZE" \
        --duration "$SECS" --warmup 0.5 --json $1 |
        /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"] == 0, d; print(round(d["ops_per_sec"]))'
}
plain=() keyed=()
for i in $(seq 1 "$PAIRS"); do
    p=$(run "") k=$(run --session)
    plain+=("$p") keyed+=("$k")
    echo "pair $i: without key $p/s, with key $k/s"
done
/usr/bin/python3 - "${plain[*]}" "${keyed[*]}" <<'PY'
import sys
p = [float(x) for x in sys.argv[1].split()]
k = [float(x) for x in sys.argv[2].split()]
mp, mk = sum(p) / len(p), sum(k) / len(k)
print(f"mean without key {mp:.0f}/s, with key {mk:.0f}/s: ratio {mk / mp:.3f}")
PY
