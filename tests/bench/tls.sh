#!/usr/bin/env bash
# make bench-tls: the cost of peer TLS. Two 3-node raftd clusters run side by side, one
# with peer TLS (certificates from tools/peer-certs.sh) and one without; 256-byte proposals
# with 64 clients (spread over the nodes) and with 1 client (on the leader) are measured on
# each, the two clusters alternated cell by cell for BENCH_ROUNDS rounds so that drift and
# the noise of a shared machine hit both alike. Prints the median of each cell and the
# TLS/plaintext ratios; writes build/bench/tls.json. Knobs: BENCH_SECONDS (default 3),
# BENCH_WARMUP (0.5), BENCH_ROUNDS (5).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/bench
mkdir -p "$out"
BENCH_SECONDS=${BENCH_SECONDS:-3}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_TMP=$(mktemp -d)
BENCH_LOG_LEVEL=info
. tests/bench/cluster.sh
ALL_PIDS=""
cleanup() {
    PIDS=$ALL_PIDS
    stop_cluster
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cells=$BENCH_TMP/cells.jsonl
: > "$cells"

pki=$BENCH_TMP/pki
tools/peer-certs.sh ca "$pki"
for i in 1 2 3; do tools/peer-certs.sh node "$pki" benchtls "$i"; done

declare -A SOCK ORDERED PIDS_OF
for mode in plain tls; do
    if [ $mode = tls ]; then
        BENCH_RAFTD_ARGS="--peer-tls-cert $pki/node-{id}.pem --peer-tls-key $pki/node-{id}.key --peer-tls-ca $pki/ca.pem"
    else
        BENCH_RAFTD_ARGS=""
    fi
    start_cluster 3 "bench$mode"
    ALL_PIDS+="${ALL_PIDS:+ }$PIDS"
    PIDS_OF[$mode]=$PIDS
    SOCK[$mode]=$LEADER_SOCKET
    ordered=$LEADER_SOCKET
    for s in ${SOCKETS//,/ }; do [ "$s" = "$LEADER_SOCKET" ] || ordered+=",$s"; done
    ORDERED[$mode]=$ordered
done
# Both at info (a few lines per connection), so the TLS cluster can be seen to run TLS.
grep -q "peer TLS on" "$BENCH_TMP"/benchtls/n1.log || { echo "the TLS cluster runs without TLS" >&2; exit 1; }

for r in $(seq 1 "$BENCH_ROUNDS"); do
    for c in 64 1; do
        # Alternate which goes first, so neither always runs on a warmer machine.
        if [ $((r % 2)) = 1 ]; then order="plain tls"; else order="tls plain"; fi
        for mode in $order; do
            if [ "$c" = 1 ]; then socks=${SOCK[$mode]}; else socks=${ORDERED[$mode]}; fi
            line=$("$RAFTBENCH" --json --label "$mode c=$c" --warmup "$BENCH_WARMUP" \
                --duration "$BENCH_SECONDS" --sockets "$socks" --pids "${PIDS_OF[$mode]// /,}" \
                --clients "$c" --size 256)
            echo "$line" >> "$cells"
            /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("round %s %-12s %8.0f ops/s  p50 %7.1f us  p99 %7.1f us  raftd cpu %5.1f us/op" % (sys.argv[2], r["label"], r["ops_per_sec"], r["p50_us"], r["p99_us"], r["cpu_us_per_op"]))' "$line" "$r" >&2
        done
    done
done

/usr/bin/python3 - "$cells" "$out/tls.json" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for label in sorted({r["label"] for r in rows}):
    rs = [r for r in rows if r["label"] == label]
    med[label] = {k: statistics.median(r[k] for r in rs) for k in ("ops_per_sec", "p50_us", "p99_us", "cpu_us_per_op")}
    med[label]["runs"] = len(rs)
out = {"cells": med, "ratios": {}}
print(f"{'cell':14} {'ops/s':>9} {'p50 us':>8} {'p99 us':>8} {'cpu us/op':>9}  (medians of {med[next(iter(med))]['runs']} runs)")
for label, m in med.items():
    print(f"{label:14} {m['ops_per_sec']:9.0f} {m['p50_us']:8.1f} {m['p99_us']:8.1f} {m['cpu_us_per_op']:9.1f}")
for c in (64, 1):
    p, t = med[f"plain c={c}"], med[f"tls c={c}"]
    ratio = {"throughput": t["ops_per_sec"] / p["ops_per_sec"], "p50": t["p50_us"] / p["p50_us"],
             "cpu_per_op": t["cpu_us_per_op"] / p["cpu_us_per_op"]}
    out["ratios"][f"c={c}"] = ratio
    print(f"TLS/plain c={c}: throughput x{ratio['throughput']:.3f}, p50 x{ratio['p50']:.3f}, "
          f"raftd CPU per op x{ratio['cpu_per_op']:.3f}")
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
