#!/usr/bin/env bash
# make bench-etcd: 256-byte writes with 1, 16, 64 and 256 concurrent clients against a
# 3-member etcd (Debian's etcd-server, default fsync durability, loopback) and a 3-node raftd,
# the two alternated cell by cell so drift affects both. Clients talk to the leader of each
# system, one request in flight per client (wrk's HTTP/1.1 keep-alive connections; raftbench
# --pipeline 1). Prints one table with the raftd/etcd ratios and the load generators' share
# of the CPU; writes build/bench/etcd.json. Knobs: BENCH_SECONDS (default 5), BENCH_WARMUP (1),
# BENCH_SYSTEMS ("etcd raftd"; name one to measure it alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/bench
mkdir -p "$out"
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-etcd raftd}
want() { [[ " $BENCH_SYSTEMS " == *" $1 "* ]]; }
for tool in etcd wrk; do
    command -v $tool >/dev/null || { echo "$tool missing: run make bench-deps" >&2; exit 1; }
done
BENCH_TMP=$(mktemp -d)
. tests/bench/cluster.sh
ETCD_PIDS=""
cleanup() {
    stop_cluster
    if [ -n "$ETCD_PIDS" ]; then
        kill -TERM $ETCD_PIDS 2>/dev/null || true
        for p in $ETCD_PIDS; do wait "$p" 2>/dev/null || true; done
    fi
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- etcd: 3 members on loopback ---------------------------------------------------------
if want etcd; then
cluster="" urls=()
for i in 1 2 3; do
    cport[$i]=$(free_port); pport[$i]=$(free_port)
    cluster+="${cluster:+,}e$i=http://127.0.0.1:${pport[$i]}"
done
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$BENCH_TMP/etcd$i" \
        --listen-client-urls "http://127.0.0.1:${cport[$i]}" --advertise-client-urls "http://127.0.0.1:${cport[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${pport[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pport[$i]}" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raftd-bench \
        --logger zap --log-level warn >"$BENCH_TMP/etcd$i.log" 2>&1 &
    ETCD_PIDS+="${ETCD_PIDS:+ }$!"
    urls[$i]="http://127.0.0.1:${cport[$i]}"
done
# The leader's client URL, once a put succeeds through it (polls with a deadline).
etcd_leader=$(/usr/bin/python3 - "${urls[@]:1}" <<'PY'
import json, sys, time, urllib.request
def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    return json.load(urllib.request.urlopen(req, timeout=2))
deadline = time.time() + 60
while time.time() < deadline:
    try:
        st = {u: post(u, "/v3/maintenance/status", {}) for u in sys.argv[1:]}
        lead = [u for u, s in st.items() if s.get("leader") and s["leader"] == s["header"]["member_id"]]
        if lead:
            post(lead[0], "/v3/kv/put", {"key": "cmVhZHk=", "value": "MQ=="})
            print(lead[0]); sys.exit(0)
    except Exception as e:
        last = e
    time.sleep(0.1)
sys.exit("etcd did not elect a leader in 60 s")
PY
)
echo "etcd 3 members up, leader $etcd_leader" >&2

# wrk's request body: a put of 256 random bytes (base64 in etcd's JSON gateway) under one of
# 1000 keys, so each request is a distinct write as in raftbench.
/usr/bin/python3 - "$BENCH_TMP/put.lua" <<'PY'
import base64, os, sys
value = base64.b64encode(os.urandom(256)).decode()
bodies = ['{"key":"%s","value":"%s"}' % (base64.b64encode(b"bench-%04d" % i).decode(), value) for i in range(1000)]
with open(sys.argv[1], "w") as f:
    f.write("local bodies = {\n" + ",\n".join('[[%s]]' % b for b in bodies) + "\n}\n")
    f.write('local n = 0\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write("request = function()\n  n = n + 1\n  return wrk.format(nil, '/v3/kv/put', nil, bodies[n % 1000 + 1])\nend\n")
PY
fi

# ---- raftd: 3 nodes ----------------------------------------------------------------------
if want raftd; then
    start_cluster 3 etcdcmp
    echo "raftd 3 nodes up, leader $LEADER_SOCKET" >&2
fi

cpu_of() {  # total utime+stime seconds of the given pids
    /usr/bin/python3 -c 'import os,sys
t=0
for p in sys.argv[1:]:
    try: f=open("/proc/%s/stat"%p).read().rsplit(")",1)[1].split(); t+=int(f[11])+int(f[12])
    except OSError: pass
print(t/os.sysconf("SC_CLK_TCK"))' "$@"
}

cells=$BENCH_TMP/cells.jsonl
: > "$cells"
# The machine's own floor, measured in this run: what one loopback round trip and one small
# durable write cost here bounds any replicated write's latency from below.
echo "[baseline] loopback TCP round trip, 256 B write + fdatasync" >&2
mkdir -p "$BENCH_TMP/fsync"
{ "$RAFTBENCH" --tcp-rtt --count 20000; "$RAFTBENCH" --raw-fsync "$BENCH_TMP/fsync" --count 1000 --size 256; } |
    /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l); r["system"] = "baseline"; print(json.dumps(r))' >> "$cells"
for c in 1 16 64 256; do
    threads=$((c < 2 ? 1 : 2))
    if want etcd; then
    echo "[etcd  c=$c] wrk -t$threads -c$c" >&2
    wrk -t$threads -c$c -d"${BENCH_WARMUP}s" -s "$BENCH_TMP/put.lua" "$etcd_leader" >/dev/null 2>&1 || true
    before=$(cpu_of $ETCD_PIDS)
    TIMEFORMAT='%U %S'
    { time wrk -t$threads -c$c -d"${BENCH_SECONDS}s" --latency -s "$BENCH_TMP/put.lua" "$etcd_leader" \
        > "$BENCH_TMP/wrk.out" 2>&1 ; } 2> "$BENCH_TMP/wrk.time"
    after=$(cpu_of $ETCD_PIDS)
    /usr/bin/python3 - "$c" "$BENCH_TMP/wrk.out" "$(cat "$BENCH_TMP/wrk.time")" "$before" "$after" "$BENCH_SECONDS" >> "$cells" <<'PY'
import json, re, sys
c, path, gen, before, after, secs = sys.argv[1:7]
text = open(path).read()
unit = {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}
def lat(pct):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
    return float(m.group(1)) * unit[m.group(2)] if m else None
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
reqs = re.search(r"(\d+) requests in", text)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
u, s = (float(x) for x in gen.split())
server = float(after) - float(before)
ops = int(reqs.group(1)) if reqs else 0
print(json.dumps({"system": "etcd", "clients": int(c), "ops_per_sec": float(rps.group(1)) if rps else 0,
                  "p50_us": lat(50), "p99_us": lat(99), "errors": int(non2xx.group(1)) if non2xx else 0,
                  "server_cpu_s": server, "generator_cpu_s": u + s,
                  "generator_cpu_share": (u + s) / (u + s + server) if (u + s + server) else 0,
                  "cpu_us_per_op": server * 1e6 / ops if ops else None}))
PY
    fi
    want raftd || continue
    echo "[raftd c=$c] raftbench --clients $c" >&2
    "$RAFTBENCH" --json --label "raftd c=$c" --sockets "$LEADER_SOCKET" --pids "${PIDS// /,}" \
        --clients "$c" --size 256 --warmup "$BENCH_WARMUP" --duration "$BENCH_SECONDS" |
        /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["system"]="raftd"; print(json.dumps(r))' >> "$cells"
done

/usr/bin/python3 - "$cells" "$out/etcd.json" <<'PY'
import json, os, sys
cells = [json.loads(l) for l in open(sys.argv[1])]
json.dump(cells, open(sys.argv[2], "w"), indent=1)
by = {(c["system"], c.get("clients")): c for c in cells}
base = {c["op"]: c for c in cells if c["system"] == "baseline"}
if base:
    rtt, fs = base.get("tcp_rtt", {}), base.get("raw_fsync", {})
    print("machine: %d cpus; loopback TCP RTT p50 %.1f us; 256 B write+fdatasync p50 %.0f us (appending), %.0f us (overwriting)"
          % (os.cpu_count(), rtt.get("p50_us", 0), fs.get("p50_us", 0), fs.get("overwrite_p50_us", 0)))
print("3 nodes, 256 B writes, one request in flight per client, all clients on the leader")
print("%7s | %10s %9s %9s | %10s %9s %9s | %8s %9s %9s" % ("clients", "etcd op/s", "p50 us", "p99 us",
      "raftd op/s", "p50 us", "p99 us", "thr x", "p50 x", "p99 x"))
f = lambda v: "%9.1f" % v if v is not None else "%9s" % "n/a"
for c in (1, 16, 64, 256):
    e, r = by.get(("etcd", c)), by.get(("raftd", c))
    if not e and not r:
        continue
    e = e or {"ops_per_sec": 0, "p50_us": None, "p99_us": None}
    r = r or {"ops_per_sec": 0, "p50_us": None, "p99_us": None}
    ratio = lambda a, b: "%9.2f" % (a / b) if a and b else "%9s" % "n/a"
    print("%7d | %10.0f %s %s | %10.0f %s %s | %s %s %s" % (c, e["ops_per_sec"], f(e["p50_us"]), f(e["p99_us"]),
          r["ops_per_sec"], f(r["p50_us"]), f(r["p99_us"]), ratio(r["ops_per_sec"], e["ops_per_sec"]).replace(" ", "", 1),
          ratio(e["p50_us"], r["p50_us"]), ratio(e["p99_us"], r["p99_us"])))
print("ratios: thr = raftd/etcd throughput; p50, p99 = etcd/raftd latency (above 1: raftd faster)")
for sysname in ("etcd", "raftd"):
    sh = [c["generator_cpu_share"] for c in cells if c["system"] == sysname and c.get("generator_cpu_share") is not None]
    if sh:
        print("load generator's share of the CPU with %s: %.0f%% to %.0f%%" % (sysname, 100 * min(sh), 100 * max(sh)))
for sysname in ("etcd", "raftd"):
    cpu = [(c["clients"], c["cpu_us_per_op"]) for c in cells if c["system"] == sysname and c.get("cpu_us_per_op")]
    if cpu:
        print("%s server CPU per write (us): %s" % (sysname, ", ".join("c=%d %.0f" % x for x in cpu)))
PY
echo "wrote $out/etcd.json" >&2
