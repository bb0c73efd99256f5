"""Runs the client conformance list (scenarios.txt) with every client's driver against one
real 3-node cluster and prints one table, scenario x client. Exit 1 when any cell fails.

    /usr/bin/python3 tests/clients/conformance.py [--only SCENARIO,...] [--clients cpp,go]
    /usr/bin/python3 tests/clients/conformance.py --bench [--seconds 5] [--rounds 3]

A driver is one process per scenario: it gets the nodes' sockets, the leader's id and a
spare node id; it asks for faults on stdout ("@kill-leader", "@pause 2,3", "@resume") and
reads "ok ..." on stdin; its last line is "result: pass" or "result: fail: WHY". Between
scenarios the harness restarts killed nodes, resumes paused ones and waits for an agreed
leader, so every scenario starts from a healthy cluster. Lines of the table start with
"@@ " so tests/run-suites shows them even when the suite passes.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from raftd_cluster import Cluster  # noqa: E402

BUILD = os.path.abspath(os.environ.get("RAFTD_BUILD", "build/release"))
# Drivers are built into the release tree (the Go one is release-only).
DRIVER_DIR = os.path.join(ROOT, "build", "release", "tests")
DRIVERS = {
    "cpp": [os.path.join(DRIVER_DIR, "client_driver_cpp")],
    "python": ["/usr/bin/python3", os.path.join(HERE, "driver_python.py")],
    "go": [os.path.join(DRIVER_DIR, "client_driver_go")],
}
DRIVER_TIMEOUT = 180


def scenarios():
    out = []
    with open(os.path.join(HERE, "scenarios.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line.split("|")[0].strip())
    return out


def heal(c, paused):
    for n in paused:
        if n.running():
            n.proc.send_signal(signal.SIGCONT)
    paused.clear()
    for n in c.nodes.values():
        if not n.running():
            n.start()
    lead = c.leader()
    # Every node has caught up with the leader's commit before the next scenario.
    top = lead.try_status()["commit"]
    c.await_(lambda: all((n.try_status() or {}).get("commit", 0) >= top for n in c.nodes.values()),
             "every node caught up", 30)
    return lead


def run_driver(c, client, scenario, spare, log):
    lead = heal(c, [])
    args = DRIVERS[client] + ["--scenario", scenario,
                              "--nodes", ",".join(f"{n.id}={n.socket}" for n in c.nodes.values()),
                              "--leader", str(lead.id), "--spare", str(spare)]
    paused = []
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                         text=True, bufsize=1)
    timer = threading.Timer(DRIVER_TIMEOUT, p.kill)
    timer.start()
    result = "fail: no result line"
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            log.write(f"[{client} {scenario}] {line}\n")
            log.flush()
            if line.startswith("@kill-leader"):
                lead.kill(signal.SIGKILL)
                lead = c.leader(among=c.running())
                p.stdin.write(f"ok {lead.id}\n")
            elif line.startswith("@pause "):
                for i in line.split()[1].split(","):
                    n = c.nodes[int(i)]
                    n.proc.send_signal(signal.SIGSTOP)
                    paused.append(n)
                p.stdin.write("ok\n")
            elif line.startswith("@resume"):
                for n in paused:
                    n.proc.send_signal(signal.SIGCONT)
                paused.clear()
                p.stdin.write("ok\n")
            elif line.startswith("result: "):
                result = line[len("result: "):]
        p.wait()
    finally:
        timer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
        heal(c, paused)
    if p.returncode != 0 and result == "pass":
        result = f"fail: exit {p.returncode}"
    if p.returncode < 0:
        result = f"fail: killed (signal {-p.returncode}; timeout {DRIVER_TIMEOUT}s?)"
    return result


def conformance(only, clients):
    names = scenarios()
    if only:
        names = [n for n in names if n in only]
    results = {}
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    logpath = os.path.join(ROOT, "build", "test-logs", "client_conformance_drivers.log")
    os.makedirs(os.path.dirname(logpath), exist_ok=True)
    with open(logpath, "w") as log, Cluster(3, name="conformance", extra=extra) as c:
        c.start()
        c.leader()
        spare = 10
        for name in names:
            for client in clients:
                spare += 1
                t0 = time.monotonic()
                r = run_driver(c, client, name, spare, log)
                results[(name, client)] = r
                print(f"{name:28} {client:7} {r} ({time.monotonic() - t0:.1f}s)", flush=True)
    width = max(len(n) for n in names)
    print(f"@@ client conformance: {len(names)} scenarios x {len(clients)} clients "
          f"(tests/clients/scenarios.txt)")
    print("@@ " + f"{'scenario':{width}}  " + "  ".join(f"{cl:7}" for cl in clients))
    for name in names:
        cells = ["pass" if results[(name, cl)] == "pass" else "FAIL" for cl in clients]
        print("@@ " + f"{name:{width}}  " + "  ".join(f"{x:7}" for x in cells))
    failed = [(k, v) for k, v in results.items() if v != "pass"]
    for (name, client), why in failed:
        print(f"@@ FAIL {name} [{client}]: {why}")
    if failed:
        print(f"driver output: {logpath}")
    return 1 if failed else 0


def bench(seconds, rounds):
    """Proposals/s, 256 B, 64 in flight on one connection, on the leader of a 3-node
    cluster: raftbench (the C++ load generator) and each client's driver, taking turns
    `rounds` times so a noisy neighbour on the machine hurts all of them alike."""
    out = {k: [] for k in ("raftbench", "cpp", "python", "go")}
    with Cluster(3, name="bench") as c:
        c.start()
        lead = c.leader()
        rb = os.path.join(BUILD, "bin", "raftbench")
        for _ in range(rounds):
            p = subprocess.run([rb, "--sockets", lead.socket, "--clients", "1", "--pipeline", "64",
                                "--size", "256", "--duration", str(seconds), "--warmup", "1",
                                "--json"], capture_output=True, text=True, timeout=300)
            try:
                out["raftbench"].append(round(json.loads(p.stdout.strip().splitlines()[-1])["ops_per_sec"]))
            except (ValueError, IndexError, KeyError):
                out["raftbench"].append(f"error: {p.stdout[-200:]} {p.stderr[-300:]}")
            for client in ("cpp", "python", "go"):
                p = subprocess.run(DRIVERS[client] + ["--bench", lead.socket, "--seconds", str(seconds)],
                                   capture_output=True, text=True, timeout=300)
                try:
                    out[client].append(json.loads(p.stdout.strip().splitlines()[-1])["proposals_per_s"])
                except (ValueError, IndexError, KeyError):
                    out[client].append(f"error: {p.stdout[-200:]} {p.stderr[-300:]}")
    print(json.dumps(out))
    for k, v in out.items():
        nums = sorted(x for x in v if isinstance(x, (int, float)))
        med = nums[len(nums) // 2] if nums else "n/a"
        print(f"{k:10} median {med} proposals/s  (runs: {v})")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--clients", default="cpp,python,go")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.bench:
        return bench(a.seconds, a.rounds)
    only = set(x for x in a.only.split(",") if x)
    return conformance(only, a.clients.split(","))


if __name__ == "__main__":
    sys.exit(main())
