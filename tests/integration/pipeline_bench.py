"""Measures the daemon's cost per committed entry on a local 3-node cluster: CPU time of
each raftd process (from /proc) and, optionally, its syscalls (strace -c on the leader).
Not a test: numbers depend on the machine. Usage:

    /usr/bin/python3 tests/integration/pipeline_bench.py [--entries N] [--size B]
        [--inflight K] [--strace]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftd_cluster import Cluster  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--inflight", type=int, default=512)
    ap.add_argument("--strace", action="store_true")
    a = ap.parse_args()
    with Cluster(3, tick_ms=100) as c:
        c.start()
        leader = c.leader()
        st = None
        if a.strace:
            out = os.path.join(c.root, "strace.txt")
            st = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(leader.proc.pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # strace attaching; not a synchronisation of the system under test
        before = {n.id: cpu_seconds(n.proc.pid) for n in c.nodes.values()}
        cl = leader.client()
        data = b"x" * a.size
        t0 = time.monotonic()
        sent = done = 0
        pending = []
        while done < a.entries:
            while sent < a.entries and sent - done < a.inflight:
                pending.append(cl.send("propose", data=data))
                sent += 1
            cl.wait_reply(pending.pop(0))
            done += 1
        wall = time.monotonic() - t0
        after = {n.id: cpu_seconds(n.proc.pid) for n in c.nodes.values()}
        if st:
            st.terminate()
            st.wait()
        print(f"{a.entries} entries of {a.size} B, {a.inflight} in flight: {wall:.2f} s, "
              f"{a.entries / wall:.0f} entries/s")
        for n in c.nodes.values():
            role = "leader" if n is leader else "follower"
            us = (after[n.id] - before[n.id]) * 1e6 / a.entries
            print(f"node {n.id} ({role}): {us:.1f} us CPU per entry")
        if st:
            with open(out) as f:
                lines = f.read().splitlines()
            total = [l.split() for l in lines if l.rstrip().endswith("total")]
            if total:
                calls = int(total[0][3] if len(total[0]) >= 6 else total[0][2])
                print(f"leader syscalls: {calls} ({calls / a.entries:.2f} per entry)")
            print("\n".join(lines[:16]))


if __name__ == "__main__":
    main()
