"""The C++ apply loop (clients/cpp/raftd/apply_loop.h) under a real 3-node cluster, through
the example application raftd-counter (clients/examples/counter-cpp); run by
tests/scripts/clients_cpp_apply_restart.sh.

Counters run on nodes 2 and 3 (REPL mode, snapshot every 50 entries) while a writer
proposes through node 1. Node 2 and node 3 are SIGKILLed and restarted in turn under their
counter, with leadership moved to the other counter's node first: twice restarted at once
(the counter resubscribes where it stopped, from the log), twice held down until that
leader's log is compacted past the victim's counter (the restarted node installs a
snapshot, and its counter must restore it mid-stream). Node 1 runs no application, so it
never snapshots and keeps the whole log: the reference. At the end every counter's state
(its hash chains index, type and data of every entry it applied) must equal the state
computed from node 1's log through the same index, and a counter started from nothing on a
compacted node must restore and reach the same state.

    /usr/bin/python3 tests/integration/cpp_apply_test.py
"""
import os
import subprocess
import sys
import threading
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
from raftd_cluster import Cluster  # noqa: E402
from raftd_client import Client, RaftdError  # noqa: E402

BUILD = os.path.abspath(os.environ.get("RAFTD_BUILD", "build/release"))
COUNTER = os.path.join(BUILD, "bin", "raftd-counter")
PAD = b"x" * 4000  # 1 MiB segments fill in ~250 entries, so compaction happens quickly
ROUNDS = 4


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Counter:
    """A raftd-counter REPL on one node."""

    def __init__(self, node, every=50):
        self.node = node
        self.err = open(os.path.join(node.cluster.root, f"counter-{node.id}-{id(self)}.err"), "wb")
        self.p = subprocess.Popen([COUNTER, "--socket", node.socket, "--snapshot-every",
                                   str(every), "repl"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.err)

    def ask(self, line):
        try:
            self.p.stdin.write((line + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"counter on node {self.node.id} exited "
                                 f"{self.p.wait()}: {self.stderr()}")
        out = self.p.stdout.readline().decode().strip()
        check(out and not out.startswith("error"), f"counter on node {self.node.id}: "
                                                   f"{line!r} -> {out!r}; {self.stderr()}")
        return out

    def state(self, wait=None):
        out = self.ask(f"wait {wait}" if wait is not None else "state")
        return {k: (v if k in ("hash", "snapshot_error") else int(v)) for k, v in
                (kv.split("=") for kv in out.split())}

    def stderr(self):
        self.err.flush()
        with open(self.err.name, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.flush()
            check(self.p.wait(timeout=30) == 0, f"counter exit {self.p.returncode}")
        self.err.close()


def expected(log, indexes):
    """{index: the counter state after applying the reference log 1..index} for each of
    `indexes`, in one pass (counter_main.cpp: FNV-1a 64 over "INDEX TYPE CRC32 " chained)."""
    h = 14695981039346656037
    total = count = 0
    mask = (1 << 64) - 1
    out = {}
    for i in range(1, max(indexes) + 1):
        term, typ, data = log[i]
        data = data or b""
        for c in f"{i} {typ} {zlib.crc32(data):08x} ".encode():
            h = ((h ^ c) * 1099511628211) & mask
        if typ == "data":
            count += 1
            if data.startswith(b"add "):
                total += int(data[4:].split(b" ")[0])
        if i in indexes:
            out[i] = {"applied": i, "total": total, "count": count, "hash": f"{h:016x}"}
    return out


def writer(node, stop, stats):
    """Proposes "add 1 <pad>" through `node`, 8 in flight; errors are counted, not fatal
    (elections and killed leaders make some fail or end indeterminate)."""
    while not stop.is_set():
        try:
            with Client(node.socket, timeout=10) as cl:
                while not stop.is_set():
                    ids = [cl.propose_async(b"add 1 " + PAD) for _ in range(8)]
                    ok = 0
                    for r in ids:
                        try:
                            cl.result(r)
                            ok += 1
                        except RaftdError:
                            stats["failed"] += 1
                    stats["ok"] += ok
                    if not ok:
                        stop.wait(0.01)  # no leader just now: do not spin on refusals
        except (RaftdError, OSError):
            stats["failed"] += 1
            stop.wait(0.01)


def noticed(state):
    """The applied index once the counter saw its stream end, else None."""
    return state["applied"] if state["connected"] == 0 else None


def transfer(c, to):
    for _ in range(20):
        try:
            with Client(to.socket, timeout=10) as cl:
                if cl.transfer_leader(to.id) == to.id:
                    return
        except RaftdError:
            pass
        c.leader()
    raise AssertionError(f"could not move leadership to node {to.id}")


def kill_restart():
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(3, extra=extra) as c:
        c.start()
        c.leader()
        n1, n2, n3 = c.nodes[1], c.nodes[2], c.nodes[3]
        counters = {2: Counter(n2), 3: Counter(n3)}
        for k in counters.values():  # open() is one attempt: let it finish before any kill
            check(k.state()["connected"] == 1, "counter subscribed")
        stop, stats = threading.Event(), {"ok": 0, "failed": 0}
        w = threading.Thread(target=writer, args=(n1, stop, stats), daemon=True)
        w.start()
        try:
            for rnd in range(ROUNDS):
                victim = c.nodes[2 + rnd % 2]
                other = c.nodes[3 - rnd % 2]
                transfer(c, other)
                victim.kill()
                # Once its counter noticed the loss, it applied all it received: `before`.
                k = counters[victim.id]
                before = c.await_(lambda: noticed(k.state()), f"counter {victim.id} to notice")
                if rnd >= 2:
                    # Hold the victim down until the leader (other) compacted past what its
                    # counter applied: it must come back through a snapshot. (In the first
                    # rounds it comes back at once: the stream resumes from the log.)
                    c.await_(lambda: (other.try_status() or {}).get("first_index", 0) >
                             before + 1, f"node {other.id} to compact past {before}", timeout=60)
                victim.start()
                c.await_(lambda: k.state()["applied"] > before + 10,
                         f"counter on node {victim.id} to apply again", timeout=60)
        finally:
            stop.set()
            w.join(timeout=60)
        check(stats["ok"] > 0, f"writer: {stats}")
        with Client(n1.socket, timeout=20) as cl:
            commit = cl.read_index()
        finals = {i: k.state(wait=commit) for i, k in counters.items()}
        # A new replica on a compacted node: snapshot first, then the rest.
        check(n2.try_status()["first_index"] > 1, n2.try_status())
        fresh = Counter(n2)
        s = fresh.state(wait=finals[2]["applied"])
        check(s["restores"] >= 1, f"fresh counter restored: {s}")
        states = {**{f"node {i}": st for i, st in finals.items()}, "fresh": s}
        idx = {st["applied"] for st in states.values()}
        want = expected(c.entries(n1, max(idx), timeout=60), idx)
        for who, st in states.items():
            got = {k: st[k] for k in want[st["applied"]]}
            check(got == want[st["applied"]], f"counter {who}: {got} != log "
                                              f"{want[st['applied']]}")
        restores = sum(st["restores"] for st in finals.values())
        reconnects = sum(st["reconnects"] for st in finals.values())
        check(reconnects >= ROUNDS, f"each kill made a counter reconnect: {finals}")
        check(restores >= 1, f"a restarted node's counter restored a snapshot: {finals}")
        check(all(st["snapshot_failures"] == 0 for st in finals.values()), finals)
        for k in (*counters.values(), fresh):
            k.close()
        print(f"writer {stats}; counters {finals}; fresh {s}")


if __name__ == "__main__":
    kill_restart()
    print("kill_restart: ok")
