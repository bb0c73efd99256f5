#!/usr/bin/env bash
# make bench: the standard raftd benchmark on this machine, in one run (docs/performance.md).
#  - baselines measured now: loopback TCP round trip, raw write+fdatasync loop, raw
#    Unix-socket ping-pong;
#  - IPC-only ping round trips through raftd against that raw ping-pong;
#  - the WAL micro-benchmark (build/release/bin/wal_bench) when it is built;
#  - proposals on clusters of 1 and 3 nodes (5 with BENCH_FIVE=1), payloads 64 B, 256 B and
#    4 KiB, 1/16/64/256 clients (pipeline 1 each; the first client on the leader).
# Writes build/bench/results.json and build/bench/results.png; prints one table.
# Knobs: BENCH_SECONDS (measured seconds per cell, default 2), BENCH_WARMUP (0.5).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/bench
mkdir -p "$out"
BENCH_SECONDS=${BENCH_SECONDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_TMP=$(mktemp -d)
. tests/bench/cluster.sh
RAW_PID=""
cleanup() {
    stop_cluster
    [ -n "$RAW_PID" ] && { kill "$RAW_PID" 2>/dev/null; wait "$RAW_PID" 2>/dev/null; }
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cells=$BENCH_TMP/cells.jsonl
: > "$cells"
failed=0
nodes_list="1 3"
[ "${BENCH_FIVE:-0}" = 1 ] && nodes_list+=" 5"
sizes="64 256 4096"
clients_list="1 16 64 256"
total=$((4 + $(wc -w <<<"$nodes_list") * 12))
step=0
progress() { step=$((step + 1)); printf '[%2d/%d %3ds] %s\n' "$step" "$total" "$SECONDS" "$*" >&2; }

cell() {  # label, raftbench args...; appends one JSON line (or an error line) to $cells
    local label=$1 line
    shift
    if line=$("$RAFTBENCH" --json --label "$label" --warmup "$BENCH_WARMUP" --duration "$BENCH_SECONDS" "$@" 2>"$BENCH_TMP/err"); then
        echo "$line" >> "$cells"
        /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("    %.0f ops/s, p50 %.1f us, p99 %.1f us" % (r["ops_per_sec"], r["p50_us"], r["p99_us"]))' "$line" >&2
    else
        failed=1
        printf '{"label":"%s","error":"%s"}\n' "$label" "$(tr -d '"\\' < "$BENCH_TMP/err" | tr '\n' ' ')" >> "$cells"
        echo "    FAILED: $(cat "$BENCH_TMP/err")" >&2
    fi
}

# ---- machine and baselines ---------------------------------------------------------------
progress "baselines: loopback TCP round trip, write+fdatasync loop"
"$RAFTBENCH" --tcp-rtt --label tcp_rtt > "$BENCH_TMP/tcp_rtt.json"
"$RAFTBENCH" --raw-fsync "$BENCH_TMP" --size 256 --count 1000 > "$BENCH_TMP/raw_fsync.json"

progress "IPC ping: raftd against a raw Unix-socket ping-pong"
"$RAFTBENCH" --serve-raw "$BENCH_TMP/raw.sock" &
RAW_PID=$!
start_cluster 1 ping
for c in 1 16; do
    # Alternate the two so drift affects both alike.
    cell "ping raftd c=$c" --op ping --sockets "$SOCKETS" --clients $c
    cell "ping raw c=$c" --op ping --sockets "$BENCH_TMP/raw.sock" --clients $c
done
stop_cluster
kill "$RAW_PID"; wait "$RAW_PID" 2>/dev/null || true; RAW_PID=""

progress "WAL micro-benchmark"
if [ -x build/release/bin/wal_bench ]; then
    build/release/bin/wal_bench --dir "$BENCH_TMP" --sizes 256 --batches 1,16,256 --reps 2 --seconds 1 --json \
        > "$BENCH_TMP/wal.json" 2>"$BENCH_TMP/err" ||
        { echo "    wal_bench FAILED: $(cat "$BENCH_TMP/err")" >&2; failed=1; echo '{}' > "$BENCH_TMP/wal.json"; }
else
    echo "    build/release/bin/wal_bench is not built (the storage work provides it); skipped" >&2
    echo '{"skipped":"wal_bench not built"}' > "$BENCH_TMP/wal.json"
fi

# ---- proposals ---------------------------------------------------------------------------
for n in $nodes_list; do
    start_cluster "$n" "bench$n"
    # The leader first: a single client talks to it; more clients spread over every node,
    # as applications beside each node would.
    ordered=$LEADER_SOCKET
    for s in ${SOCKETS//,/ }; do [ "$s" = "$LEADER_SOCKET" ] || ordered+=",$s"; done
    for size in $sizes; do
        for c in $clients_list; do
            progress "propose: $n node(s), $size B, $c client(s)"
            cell "propose n=$n size=$size c=$c" --sockets "$ordered" --pids "${PIDS// /,}" \
                --clients "$c" --size "$size"
        done
    done
    stop_cluster
done

# ---- memory: a 1 GiB log and a subscriber that never reads ---------------------------------
progress "memory: 1 GiB of 1 MiB proposals on a 1-node raftd with a stalled subscriber"
start_cluster 1 mem
/usr/bin/python3 tests/bench/stalled_subscriber.py "$SOCKETS" > "$BENCH_TMP/stall.out" &
stall_pid=$!
# Proceed once the subscription is acknowledged (the script prints "subscribed").
for _ in $(seq 1 200); do grep -q subscribed "$BENCH_TMP/stall.out" 2>/dev/null && break; sleep 0.05; done
"$RAFTBENCH" --json --label "memory 1GiB" --sockets "$SOCKETS" --clients 4 --size 1048576 \
    --count "${BENCH_MEM_MB:-1024}" >> "$cells" 2>"$BENCH_TMP/err" || { failed=1; cat "$BENCH_TMP/err" >&2; }
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PIDS/status") hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PIDS/status")
du_kb=$(du -sk "$BENCH_TMP/mem/n1" | cut -f1)
echo "{\"rss_kib\":$rss,\"peak_rss_kib\":$hwm,\"data_dir_kib\":$du_kb}" > "$BENCH_TMP/mem.json"
echo "    raftd RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB) with a $((du_kb / 1024)) MiB data dir" >&2
kill "$stall_pid" 2>/dev/null; wait "$stall_pid" 2>/dev/null || true
stop_cluster

/usr/bin/python3 tests/bench/report.py "$out" "$cells" "$BENCH_TMP/tcp_rtt.json" \
    "$BENCH_TMP/raw_fsync.json" "$BENCH_TMP/wal.json" "$BENCH_TMP/mem.json"
echo "total ${SECONDS}s" >&2
exit $failed
