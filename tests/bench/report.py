"""Turns the benchmark cells into build/bench/results.json, one printed table and a PNG
(throughput and p99 against clients, one line per cluster size and payload) drawn by
gnuplot. Used by tests/bench/run.sh.

usage: report.py OUTDIR CELLS.jsonl TCP_RTT.json RAW_FSYNC.json WAL.json MEM.json
"""
import json, os, platform, shutil, subprocess, sys

out, cells_path, rtt_path, fsync_path, wal_path = sys.argv[1:6]
cells = [json.loads(l) for l in open(cells_path) if l.strip()]
load = lambda p: json.load(open(p)) if os.path.getsize(p) else {}
rtt, fsync, wal = load(rtt_path), load(fsync_path), load(wal_path)
mem = load(sys.argv[6]) if len(sys.argv) > 6 and os.path.exists(sys.argv[6]) else {}

model = ""
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
machine = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
           "loopback_tcp_rtt_p50_us": rtt.get("p50_us"), "fdatasync_256B_p50_us": fsync.get("p50_us"),
           "fdatasync_256B_ops_per_sec": fsync.get("ops_per_sec"),
           "fdatasync_256B_overwrite_p50_us": fsync.get("overwrite_p50_us")}


def find(label):
    return next((c for c in cells if c.get("label") == label and "error" not in c), None)


ipc = {}
for c in (1, 16):
    a, b = find("ping raftd c=%d" % c), find("ping raw c=%d" % c)
    if a and b:
        ipc["c=%d" % c] = {"raftd_p50_us": a["p50_us"], "raw_p50_us": b["p50_us"],
                           "p50_ratio": round(a["p50_us"] / b["p50_us"], 2) if b["p50_us"] else None,
                           "raftd_ops_per_sec": a["ops_per_sec"], "raw_ops_per_sec": b["ops_per_sec"]}

results = {"machine": machine, "baselines": {"tcp_rtt": rtt, "raw_fsync": fsync},
           "ipc_ping": ipc, "wal": wal, "memory": mem, "cells": cells}
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=1)

print("machine: %s cpus (%s), kernel %s, load average %s; loopback TCP RTT p50 %s us; 256 B write+fdatasync "
      "p50 %s us appending, %s us overwriting" % (machine["cpus"], model or "?", machine["kernel"], machine["load_average"],
      rtt.get("p50_us"), fsync.get("p50_us"), fsync.get("overwrite_p50_us")))
for k, v in ipc.items():
    print("IPC ping %s: raftd p50 %.1f us vs raw %.1f us (x%.2f); %.0f vs %.0f ops/s"
          % (k, v["raftd_p50_us"], v["raw_p50_us"], v["p50_ratio"] or 0, v["raftd_ops_per_sec"], v["raw_ops_per_sec"]))
for w in wal.get("cells", []):
    print("WAL append %d B, batch %d: %.0f entries/s vs raw write+fdatasync %.0f (x%.2f); CPU %.1f vs %.1f us/entry"
          % (w["entry_bytes"], w["batch"], w["wal_entries_per_s"], w["raw_entries_per_s"], w["ratio"],
             w["wal_cpu_us_per_entry"], w["raw_cpu_us_per_entry"]))
if mem:
    print("memory: raftd RSS %.0f MiB (peak %.0f MiB) with a %.0f MiB data dir and a stalled subscriber"
          % (mem["rss_kib"] / 1024, mem["peak_rss_kib"] / 1024, mem["data_dir_kib"] / 1024))
if wal.get("skipped"):
    print("WAL: " + wal["skipped"])
hdr = "%-6s %6s %7s %9s %8s %8s %8s %8s %8s %9s %8s" % ("nodes", "size", "clients", "ops/s", "MB/s", "p50 us",
                                                    "p99 us", "p99.9", "max us", "cpu us/op", "syncs/op")
print(hdr)
print("-" * len(hdr))
for c in cells:
    if not c.get("label", "").startswith("propose"):
        continue
    if "error" in c:
        print("%-40s FAILED: %s" % (c["label"], c["error"][:80]))
        continue
    syncs = "n/a" if c.get("wal_syncs_per_op") is None else "%.3f" % c["wal_syncs_per_op"]
    print("%-6d %6d %7d %9.0f %8.2f %8.1f %8.1f %8.1f %8.1f %9.1f %8s" % (
        c["nodes"], c["size"], c["clients"], c["ops_per_sec"], c["mb_per_sec"], c["p50_us"], c["p99_us"],
        c["p999_us"], c["max_us"], c["cpu_us_per_op"], syncs))
gen = [c["generator_cpu_share"] for c in cells if "generator_cpu_share" in c]
if gen:
    print("load generator's share of the CPU used: %.0f%% to %.0f%%" % (100 * min(gen), 100 * max(gen)))

# ---- chart -----------------------------------------------------------------------------
series = {}
for c in cells:
    if c.get("label", "").startswith("propose") and "error" not in c:
        series.setdefault((c["nodes"], c["size"]), []).append(c)
if not series or not shutil.which("gnuplot"):
    print("no chart: %s" % ("no proposal results" if not series else "gnuplot missing (make bench-deps)"))
    sys.exit(0)
dat = os.path.join(out, "results.dat")
with open(dat, "w") as f:
    for (n, size), cs in sorted(series.items()):
        f.write('"%d node%s, %d B"\n' % (n, "" if n == 1 else "s", size))
        for c in sorted(cs, key=lambda c: c["clients"]):
            f.write("%d %.1f %.1f\n" % (c["clients"], c["ops_per_sec"], c["p99_us"]))
        f.write("\n\n")
png = os.path.join(out, "results.png")
blocks = len(series)
script = """
set terminal pngcairo size 1400,560 font ",10"
set output '%s'
set multiplot layout 1,2 title "raftd proposals on %s CPUs (make bench)"
set logscale x 2
set xlabel "clients (pipeline 1 each)"
set key left top
set ylabel "committed proposals / s"
plot for [i=0:%d] '%s' index i using 1:2 with linespoints title columnheader(1)
set logscale y
set ylabel "p99 latency (us)"
plot for [i=0:%d] '%s' index i using 1:3 with linespoints title columnheader(1)
unset multiplot
""" % (png, machine["cpus"], blocks - 1, dat, blocks - 1, dat)
r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
if r.returncode != 0:
    # pngcairo may be absent in gnuplot-nox builds; the plain png terminal always is.
    r = subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png"), text=True, capture_output=True)
print("wrote %s and %s" % (os.path.join(out, "results.json"), png if r.returncode == 0 else "(chart failed: %s)" % r.stderr.strip()))
