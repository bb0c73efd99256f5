#!/usr/bin/python3
"""Python client throughput against raftbench, in the same run, on one local 3-node
cluster (docs/performance.md, "The Python client"). Not a test: numbers depend on the
machine. Usage (after `make`):

    /usr/bin/python3 tests/bench/python_client.py [--count N] [--size B] [--window W]

Prints, for proposals of --size bytes to the leader over one connection: raftbench with
--pipeline W, then raftd_client sequential (propose), futures (propose_async, W in
flight), batched (propose_many, W in flight) and asyncio (W concurrent tasks).
"""
import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from raftd_cluster import Cluster  # noqa: E402
from raftd_client import Client  # noqa: E402
from raftd_client.aio import AsyncClient  # noqa: E402

BUILD = os.path.abspath(os.environ.get("RAFTD_BUILD", "build/release"))


def rate(n, t0):
    return n / (time.monotonic() - t0)


def sequential(sock, n, data):
    with Client(sock) as c:
        t0 = time.monotonic()
        for _ in range(n):
            c.propose(data)
        return rate(n, t0)


def futures(sock, n, data, window):
    with Client(sock) as c:
        t0 = time.monotonic()
        inflight = collections.deque()
        for _ in range(n):
            if len(inflight) >= window:
                inflight.popleft().result()
            inflight.append(c.propose_async(data))
        for f in inflight:
            f.result()
        return rate(n, t0)


def batched(sock, n, data, window):
    """Half a window per write: one sendall for many frames."""
    with Client(sock) as c:
        t0 = time.monotonic()
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
        return rate(n, t0)


def with_asyncio(sock, n, data, window):
    async def run():
        async with await AsyncClient.connect(sock) as c:
            left = n

            async def worker():
                nonlocal left
                while left > 0:
                    left -= 1
                    await c.propose(data)
            t0 = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(window)))
            return rate(n, t0)
    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--sequential", type=int, default=5000)
    a = ap.parse_args()
    data = os.urandom(a.size)
    with Cluster(3, tick_ms=100) as c:
        c.start()
        sock = c.leader().socket
        rb = subprocess.run([os.path.join(BUILD, "bin", "raftbench"), "--sockets", sock,
                             "--pipeline", str(min(a.window, 999)), "--size", str(a.size),
                             "--count", str(a.count), "--warmup", "1", "--json"],
                            capture_output=True, text=True, timeout=600)
        res = {"raftbench": round(json.loads(rb.stdout)["ops_per_sec"])
               if rb.returncode == 0 else f"failed: {rb.stderr[-200:]}"}
        res["sequential"] = round(sequential(sock, a.sequential, data))
        res["futures"] = round(futures(sock, a.count, data, a.window))
        res["propose_many"] = round(batched(sock, a.count, data, a.window))
        res["asyncio"] = round(with_asyncio(sock, a.count, data, a.window))
        print(f"3 nodes, {a.size} B proposals to the leader over one connection, "
              f"window {a.window}:")
        for k, v in res.items():
            print(f"  {k:13} {v} proposals/s")


if __name__ == "__main__":
    main()
