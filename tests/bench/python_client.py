#!/usr/bin/python3
"""Python client throughput against raftbench, in the same run, on one local 3-node
cluster (docs/performance.md, "The Python client"). Not a test: numbers depend on the
machine. Usage (after `make`):

    tests/bench/python_client.py [--count N] [--size B] [--window W] [--rounds R]

Prints, per round, for proposals of --size bytes to the leader over one connection:
raftbench with --pipeline W, then raftd_client sequential (propose), propose_async with W
in flight, propose_many (W/2 per write, W in flight) and asyncio (W concurrent tasks),
each with the client's CPU per proposal and its throughput as a share of raftbench's.
Last, the same Python modes against fake_raftd (the real server over an in-memory log, no
Raft, no disk): the client's own ceiling on this machine.
"""
import argparse
import asyncio
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from raftd_cluster import Cluster  # noqa: E402
from raftd_client import Client  # noqa: E402
from raftd_client.aio import AsyncClient  # noqa: E402

BUILD = os.path.abspath(os.environ.get("RAFTD_BUILD", "build/release"))


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measured(fn, n, *args):
    """(proposals/s, client CPU µs per proposal) of fn(*args), which makes n proposals."""
    c0, t0 = cpu(), time.monotonic()
    fn(*args)
    return n / (time.monotonic() - t0), (cpu() - c0) * 1e6 / n


def sequential(sock, n, data):
    with Client(sock) as c:
        for _ in range(n):
            c.propose(data)


def futures(sock, n, data, window):
    with Client(sock) as c:
        inflight = collections.deque()
        for _ in range(n):
            if len(inflight) >= window:
                inflight.popleft().result()
            inflight.append(c.propose_async(data))
        for f in inflight:
            f.result()


def batched(sock, n, data, window):
    """Half a window per write: one sendall for many frames."""
    with Client(sock) as c:
        half = max(1, window // 2)
        inflight = collections.deque()
        sent = 0
        while sent < n:
            while len(inflight) >= window - half + 1:
                inflight.popleft().result()
            k = min(half, n - sent)
            inflight.extend(c.propose_many([data] * k))
            sent += k
        for f in inflight:
            f.result()


def with_asyncio(sock, n, data, window):
    async def run():
        async with await AsyncClient.connect(sock) as c:
            left = n

            async def worker():
                nonlocal left
                while left > 0:
                    left -= 1
                    await c.propose(data)
            await asyncio.gather(*(worker() for _ in range(window)))
    asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--sequential", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    data = os.urandom(a.size)
    with Cluster(3, tick_ms=100) as c:
        c.start()
        sock = c.leader().socket
        for rnd in range(a.rounds):
            rb = subprocess.run([os.path.join(BUILD, "bin", "raftbench"), "--sockets", sock,
                                 "--pipeline", str(min(a.window, 999)), "--size", str(a.size),
                                 "--count", str(a.count), "--json"],
                                capture_output=True, text=True, timeout=600)
            j = json.loads(rb.stdout) if rb.returncode == 0 else {}
            res = {"raftbench": (j.get("ops_per_sec", 0),
                                 j.get("generator_cpu_s", 0) * 1e6 / max(1, j.get("ops", 1)))}
            res["sequential"] = measured(sequential, a.sequential, sock, a.sequential, data)
            res["propose_async"] = measured(futures, a.count, sock, a.count, data, a.window)
            res["propose_many"] = measured(batched, a.count, sock, a.count, data, a.window)
            res["asyncio"] = measured(with_asyncio, a.count, sock, a.count, data, a.window)
            print(f"round {rnd + 1}: 3 nodes, {a.size} B proposals to the leader over one "
                  f"connection, {a.window} in flight ({a.count} each; sequential "
                  f"{a.sequential}):")
            for k, (ops, us) in res.items():
                share = f"{ops / res['raftbench'][0]:5.2f}x raftbench" if res["raftbench"][0] else ""
                print(f"  {k:14} {ops:9.0f} proposals/s  {us:5.1f} us client CPU each  {share}",
                      flush=True)
    fake = os.path.join(BUILD, "tests", "fake_raftd")
    if os.access(fake, os.X_OK):
        with tempfile.TemporaryDirectory() as d:
            sock = os.path.join(d, "fake.sock")
            p = subprocess.Popen([fake, sock], stdout=subprocess.PIPE)
            try:
                p.stdout.readline()  # "ready"
                print(f"against fake_raftd (no Raft, no disk), {a.size} B, {a.window} in flight:")
                for k, fn in (("propose_async", futures), ("propose_many", batched)):
                    ops, us = measured(fn, a.count, sock, a.count, data, a.window)
                    print(f"  {k:14} {ops:9.0f} proposals/s  {us:5.1f} us client CPU each",
                          flush=True)
            finally:
                p.terminate()
                p.wait()

if __name__ == "__main__":
    main()
