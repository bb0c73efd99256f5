"""Client scenarios against real 3-node raftd clusters (run by tests/scripts/clients_*.sh):
every operation from the Python client and from raftctl (the C++ client), proposals on
followers, identical streams on all nodes, per-connection order under load, a subscriber
from 1 after compaction, kill-the-leader exactly-once, bad input, the KV example
surviving a node restart, and the KV example replaying over the snapshot it uploaded.

    /usr/bin/python3 tests/integration/clients_test.py SCENARIO...

Conditions are awaited with deadlines (Cluster.await_); nothing sleeps for a fixed time.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from raftd_cluster import Cluster  # noqa: E402
from raftd_client import Client, RaftdError, decode_body, encode_request  # noqa: E402
from raftd_client import read_frame as read_body  # noqa: E402
from raftd_client.apply import ApplyLoop  # noqa: E402
import msgpack  # noqa: E402

BUILD = os.path.abspath(os.environ.get("RAFTD_BUILD", "build/release"))
RAFTCTL = os.path.join(BUILD, "bin", "raftctl")
KV = os.path.join(ROOT, "clients", "examples", "kv", "kv.py")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def followers(c, leader):
    return [n for n in c.running() if n is not leader]


def raftctl(node, *args, input=None, rc=0):
    p = subprocess.run([RAFTCTL, "--socket", node.socket, *args], input=input,
                       capture_output=True, timeout=60)
    check(p.returncode == rc, f"raftctl {' '.join(args)}: exit {p.returncode} (want {rc}); "
                              f"stderr {p.stderr.decode(errors='replace')!r}")
    return p.stdout.decode(errors="replace")


def stream(node, upto, from_=1, timeout=20.0):
    """[(index, term, type, data)] of node's stream from `from_` through `upto` (entries
    only; a leading snapshot is returned as ("snapshot", index, bytes) first)."""
    out = []
    with Client(node.socket, timeout=timeout) as c:
        sub = c.subscribe(from_=from_, timeout=timeout)
        snap = bytearray()
        last = from_ - 1
        while last < upto:
            ev = next(sub)
            if ev.kind == "snapshot":
                if ev.offset == 0:
                    snap = bytearray()
                snap += ev.data
                if ev.done:
                    out.append(("snapshot", ev.index, bytes(snap)))
                    last = ev.index
                continue
            check(ev.index == last + 1, f"node {node.id}: stream gap {last} -> {ev.index}")
            last = ev.index
            out.append((ev.index, ev.term, ev.type, ev.data))
    return out


# ---- scenarios ------------------------------------------------------------------------------

def python_ops():
    """Every operation from the Python client, on a follower (forwarding)."""
    with Cluster(3) as c:
        c.start()
        leader = c.leader()
        f = followers(c, leader)[0]
        with Client(f.socket) as cl:
            check(cl.server["node_id"] == f.id and cl.server["cluster"] == c.name, cl.server)
            cl.ping()
            p = cl.propose(b"from-a-follower")
            check(p.index >= 1 and p.term >= 1, p)
            ri = cl.read_index()
            check(ri >= p.index, f"read_index {ri} < committed {p.index}")
            st = cl.status()
            check(st["role"] == "follower" and st["leader"] == leader.id, st)
            check(len(cl.members()["members"]) == 3, "three members")
        with Client(f.socket) as cl:
            extra_port = 1  # node 4 never runs: the change only needs to commit
            m = cl.add_member(4, f"127.0.0.1:{extra_port}", learner=True)
            check([x["voter"] for x in m["members"] if x["node"] == 4] == [False], m)
            m = cl.promote(4)
            check([x["voter"] for x in m["members"] if x["node"] == 4] == [True], m)
            m = cl.demote(4)
            check([x["voter"] for x in m["members"] if x["node"] == 4] == [False], m)
            m = cl.remove_member(4)
            check(all(x["node"] != 4 for x in m["members"]), m)
            try:
                cl.remove_member(99)
                raise AssertionError("removing an unknown node succeeded")
            except RaftdError as e:
                check(e.code in ("BAD_REQUEST", "NOT_FOUND"), e.code)
        with Client(f.socket) as cl:
            # Snapshot: state through an applied index, from this node's own stream.
            idx = cl.read_index()
            s = stream(f, idx)
            check(s[-1][0] == idx, "streamed through the read index")
            check(cl.snapshot(idx, b"app-state" * 5000, chunk=10000) == idx, "snapshot index")
            check(cl.status()["snapshot_index"] == idx, "status shows the snapshot")
            # Leadership: transfer to this follower, then campaign elsewhere.
            check(cl.transfer_leader(f.id) == f.id, "transfer")
            check(c.leader() is f, "the follower leads now")
            other = followers(c, f)[0]
            with Client(other.socket) as o:
                t = o.campaign()
                check(t >= 1, t)
            c.leader()
            try:
                cl.call("frobnicate")
            except RaftdError as e:
                check(e.code == "UNKNOWN_OP", e.code)
            cl.ping()


def raftctl_ops():
    """Every raftctl command (the C++ client) on a follower."""
    with Cluster(3) as c:
        c.start()
        leader = c.leader()
        f = followers(c, leader)[0]
        check(raftctl(f, "ping").startswith(f"ok node {f.id} cluster {c.name}"), "ping")
        idx, term = map(int, raftctl(f, "propose", "hello").split())
        idx2, _ = map(int, raftctl(f, "propose", input=b"from\nstdin").split())
        check(idx2 == idx + 1, "sequential proposals")
        ri = int(raftctl(f, "read-index"))
        check(ri >= idx2, "read index")
        st = json.loads(raftctl(f, "status", "--json"))
        check(st["node_id"] == f.id and st["leader"] == leader.id, st)
        check("role      follower" in raftctl(f, "status"), "status table")
        lst = json.loads(raftctl(leader, "status", "--json"))
        check(all("progress" in m for m in lst["members"]), "leader shows progress")
        check(len(json.loads(raftctl(f, "members", "--json"))["members"]) == 3, "members")
        check("learner" in raftctl(f, "member", "add", "4", "127.0.0.1:1", "--learner"), "add")
        raftctl(f, "member", "promote", "4")
        raftctl(f, "member", "demote", "4")
        check("\n4 " not in raftctl(f, "member", "remove", "4"), "remove")
        out = raftctl(f, "tail", "--from", str(idx), "--count", "2")
        check(out.splitlines() == [f"{idx} {term} data hello",
                                   f"{idx2} {term} data 0x66726f6d0a737464696e"], out)
        # The membership changes above are config entries, shown decoded.
        out = raftctl(f, "tail", "--from", str(idx2 + 1), "--count", "4").splitlines()
        check([line.split(" ", 2)[2] for line in out] ==
              ["config voters=1,2,3 learners=4", "config voters=1,2,3,4",
               "config voters=1,2,3 learners=4", "config voters=1,2,3"], out)
        js = [json.loads(line) for line in
              raftctl(f, "tail", "--from", str(idx), "--count", "3", "--json").splitlines()]
        check(js[0]["data"] == "hello" and js[1]["hex"] == b"from\nstdin".hex() and
              js[2]["type"] == "config" and len(js[2]["members"]) == 4, js)
        # health: every node healthy; a killed one is not, and the exit code says so.
        socks = ",".join(n.socket for n in c.nodes.values())
        lines = raftctl(f, "health", "--sockets", socks).splitlines()
        check(len(lines) == 3 and all(" is healthy: " in x for x in lines), lines)
        ri = int(raftctl(f, "read-index"))
        stream(f, ri)  # applied through ri (the app's view), then save
        path = os.path.join(c.root, "snap.bin")
        with open(path, "wb") as fh:
            fh.write(os.urandom(300_000))
        check(f"snapshot {ri} saved" in raftctl(f, "snapshot", "--index", str(ri), path), "snap")
        check(raftctl(f, "transfer-leader", str(f.id)).strip() == f"leader {f.id}", "transfer")
        check(c.leader() is f, "transferred")
        p = subprocess.run([RAFTCTL, "--socket", f.socket, "member", "remove", "99"],
                           capture_output=True)
        check(p.returncode in (8, 9), f"unknown node exit {p.returncode}")
        raftctl(f, "propose", input=b"x" * ((1 << 20) + 1), rc=9)
        victim = followers(c, f)[0]
        victim.kill()
        lines = raftctl(f, "health", "--sockets", socks, rc=3).splitlines()
        check([" is unhealthy: CONNECTION" in x for x in lines] ==
              [n is victim for n in c.nodes.values()], lines)
        # Alone, the last node loses its leader: unhealthy too, within the deadline.
        followers(c, f)[0].kill()
        c.await_(lambda: subprocess.run([RAFTCTL, "--timeout", "1000", "health", "--sockets",
                                         f.socket], capture_output=True).returncode in (4, 6),
                 "the last node to report no leader or no quorum")


def streams_identical():
    """Concurrent pipelined proposers on all nodes: per-connection order holds and every
    node's stream is the same sequence."""
    with Cluster(3) as c:
        c.start()
        c.leader()
        results = {}
        errors = []

        def writer(node, tag, n=150):
            try:
                with Client(node.socket) as cl:
                    ids = [cl.propose_async(f"{tag}-{i}".encode()) for i in range(n)]
                    results[tag] = [cl.result(r)["index"] for r in ids]
            except Exception as e:  # reported below
                errors.append(f"{tag}: {e!r}")

        ts = [threading.Thread(target=writer, args=(n, f"w{n.id}{k}"))
              for n in c.running() for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, errors)
        for tag, idx in results.items():
            check(idx == sorted(idx) and len(set(idx)) == len(idx),
                  f"{tag}: acknowledged indexes out of order")
        top = max(max(v) for v in results.values())
        seqs = [stream(n, top) for n in c.running()]
        check(seqs[0] == seqs[1] == seqs[2], "all nodes stream the same sequence")
        pos = {e[3]: e[0] for e in seqs[0] if e[2] == "data"}
        for tag, idx in results.items():
            for i, ix in enumerate(idx):
                check(pos.get(f"{tag}-{i}".encode()) == ix, f"{tag}-{i} at {ix}")


def compacted_subscriber():
    """After an application snapshot and compaction, a subscriber from 1 gets the snapshot
    and then exactly the entries after it."""
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(3, extra=extra) as c:
        c.start()
        leader = c.leader()
        with Client(leader.socket) as cl:
            ids = [cl.propose_async(b"big-%d-" % i + b"x" * 65536) for i in range(40)]
            for r in ids:
                cl.result(r)
            idx = cl.read_index()
            stream(leader, idx)
            state = b"state-through-%d" % idx
            check(cl.snapshot(idx, state) == idx, "snapshot saved")
            st = cl.status()
            check(st["first_index"] > 1, f"log compacted: {st}")
            after = [cl.propose(b"after-%d" % i).index for i in range(3)]
        s = stream(leader, after[-1])
        check(s[0] == ("snapshot", idx, state), f"stream starts with the snapshot: {s[0]!r:.80}")
        check([e[0] for e in s[1:]] == list(range(idx + 1, after[-1] + 1)), "then the entries")


def kill_leader_stream():
    """Kill the leader during a stream of proposals: every acknowledged proposal is in every
    surviving node's stream exactly once; none appears twice."""
    with Cluster(3) as c:
        c.start()
        leader = c.leader()
        f = followers(c, leader)[0]
        acked, unknown = {}, set()
        stop = threading.Event()
        errors = []

        def proposer():
            i = 0
            try:
                with Client(f.socket, timeout=15) as cl:
                    while not stop.is_set():
                        batch = [(b"k-%d" % (i + j)) for j in range(20)]
                        i += 20
                        ids = [(cl.propose_async(d), d) for d in batch]
                        for rid, d in ids:
                            try:
                                acked[d] = cl.result(rid)["index"]
                            except RaftdError as e:
                                if e.code == "UNAVAILABLE":
                                    continue  # definitely not committed
                                unknown.add(d)  # INDETERMINATE / TIMEOUT / ...: may commit
            except Exception as e:
                errors.append(repr(e))

        t = threading.Thread(target=proposer)
        t.start()
        c.await_(lambda: len(acked) >= 100, "100 acknowledged proposals")
        leader.kill(signal.SIGKILL)
        new = c.leader(among=[n for n in c.running()])
        n0 = len(acked)
        c.await_(lambda: len(acked) >= n0 + 100, "100 more proposals after the kill", 30)
        stop.set()
        t.join()
        check(not errors, errors)
        with Client(new.socket) as cl:
            top = cl.read_index()
        for node in c.running():
            s = stream(node, top)
            seen = {}
            for e in s:
                if e[2] == "data":
                    seen[e[3]] = seen.get(e[3], 0) + 1
            for d, ix in acked.items():
                check(seen.get(d) == 1, f"node {node.id}: {d!r} (acked at {ix}) seen {seen.get(d)}")
            dup = [d for d, k in seen.items() if k > 1]
            check(not dup, f"node {node.id}: duplicated {dup[:5]}")
        print(f"acknowledged {len(acked)}, indeterminate {len(unknown)}")


def bad_input():
    """The bad-input list against a real node: it answers or closes, and keeps serving."""
    with Cluster(3) as c:
        c.start()
        node = c.leader()

        def raw():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(node.socket)
            return s

        def read_frame(s):
            body = read_body(s)
            return None if body is None else decode_body(body)

        s = raw()
        s.sendall(b"\xff\xff\xff\xff")
        m = read_frame(s)
        check(m and m["error"]["code"] == "TOO_LARGE" and m["id"] is None, m)
        check(s.recv(10) == b"", "closed after TOO_LARGE")
        s = raw()
        s.sendall(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
        check(read_frame(s)["error"]["code"] == "BAD_FRAME", "garbage")
        s.sendall(struct.pack(">I", 1) + b"\x01")
        check(read_frame(s)["error"]["code"] == "BAD_FRAME", "not a map")
        # half a frame then silence, many connects/drops, a client that never reads
        half = raw()
        half.sendall(struct.pack(">I", 100) + b"\x82")
        for _ in range(500):
            x = raw()
            x.close()
        greedy = raw()
        req = b"".join(encode_request("status", i) for i in range(1, 2000))
        greedy.setblocking(False)
        try:
            greedy.send(req)
        except BlockingIOError:
            pass
        with Client(node.socket) as cl:
            cl.ping()
            check(cl.propose(b"still-serving").index > 0, "proposals still commit")
        half.close()
        greedy.close()


def kv_restart():
    """The KV example: writes through one node, a node restart, linearizable reads
    everywhere, and restore from raftd's snapshot on restart."""
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(3, extra=extra) as c:
        c.start()
        leader = c.leader()
        f = followers(c, leader)[0]

        def kv(node, *cmds, every=10):
            p = subprocess.run([sys.executable, KV, "--socket", node.socket, "--snapshot-every",
                                str(every), "repl"], input="\n".join(cmds) + "\n",
                               capture_output=True, text=True, timeout=120)
            check(p.returncode == 0, f"kv exit {p.returncode}: {p.stderr}")
            return p.stdout.splitlines()

        big = "v" * 40000  # large values so snapshots can compact whole segments
        writes = [f"set k{i} {big}{i}" for i in range(60)] + ["del k7"]
        # A leader change during the writes answers some with an error (UNAVAILABLE or
        # INDETERMINATE); like any application, replay them (set and del are idempotent).
        out = kv(f, *writes)
        check(len(out) == len(writes), f"one reply per write: {len(out)}")
        failed = [i for i, line in enumerate(out) if line.startswith("error ")]
        if failed:  # replay from the first failure on, in order (keeps "del k7" after its set)
            out = kv(f, *writes[failed[0]:])
            check(not any(line.startswith("error ") for line in out), f"retried writes: {out}")
        out = kv(leader, "get k5", "get k7", "dump")
        check(out[0] == f"{big}5" and out[1] == "(nil)", out[:2])
        check(len(json.loads(out[2])) == 59, "59 keys")
        # Restart the follower the KV replica ran on; then a fresh replica there restores.
        f.stop()
        kv(leader, "set after-restart yes")
        f.start()
        # It recovers its commit index from disk at once; reads also need it to know the
        # leader again (read_index answers UNAVAILABLE without one, docs/protocol.md).
        c.await_(lambda: (f.try_status() or {}).get("commit", 0) >= 62
                 and (f.try_status() or {}).get("leader", 0) == leader.id,
                 "restarted node commits and follows the leader")
        out = kv(f, "get after-restart", "get k59", "status", every=0)
        check(out[0] == "yes" and out[1] == f"{big}59", out[:2])
        st = json.loads(out[2])
        check(st["keys"] == 60, st)
        fst = f.try_status()
        if fst["first_index"] > 1:
            check(st["restored_from"] > 0, f"replica restored from the snapshot: {st} {fst}")
        check(fst["snapshot_index"] > 0, f"the replica's snapshots reached raftd: {fst}")


def kv_replay():
    """Issue 19, bug 1: on a default-config node every KV run replays from index 1 (the log is
    compacted only once a whole segment is below the snapshot) and re-uploads the snapshot
    the node already has. That must be harmless: answered ok with the covering index."""
    with Cluster(1) as c:
        c.start()
        node = c.leader()

        def kv(*args, input=None):
            return subprocess.run([sys.executable, KV, "--socket", node.socket, *args],
                                  input=input, capture_output=True, text=True, timeout=120)

        p = kv("repl", input="".join(f"set k{i} v{i}\n" for i in range(1, 121)))
        check(p.returncode == 0 and not any(line.startswith("error ")
                                            for line in p.stdout.splitlines()),
              f"120 sets: exit {p.returncode}: {p.stdout[-300:]} {p.stderr}")
        check(node.try_status()["snapshot_index"] == 100, node.try_status())
        # The next runs replay 1..100 again and upload a snapshot at 100 once more.
        for cmd, want in ((["get", "k5"], "v5"), (["set", "k121", "v121"], None),
                          (["get", "k121"], "v121")):
            p = kv(*cmd)
            out = p.stdout.strip()
            check(p.returncode == 0 and (out == want or (want is None and out.isdigit())),
                  f"kv {cmd}: exit {p.returncode}: {p.stdout} {p.stderr}")
        # The reply carries the index of the snapshot that covers the upload, chunked or not.
        with Client(node.socket) as cl:
            check(cl.snapshot(50, b"older state") == 100, "a snapshot below the latest")
            check(cl.snapshot(100, b"x" * 10, chunk=3) == 100, "a chunked one at the latest")
            check(cl.status()["snapshot_index"] == 100, "the node's snapshot is unchanged")


class IndexedState:
    """A test application: the data of every entry by index. apply/snapshot/restore are
    what ApplyLoop calls."""

    def __init__(self):
        self.by_index = {}

    def apply(self, ev):
        self.by_index[ev.index] = ev.data

    def snapshot(self):
        return msgpack.packb(self.by_index, use_bin_type=True)

    def restore(self, blob):
        self.by_index = msgpack.unpackb(blob, raw=False, strict_map_key=False)


def apply_loop_restart():
    """Issue 19: the Python apply loop under an application whose node is SIGKILLed and
    restarted twice while writes go on: it reconnects, resubscribes from its applied index,
    snapshots by policy, and its state equals the log; a fresh loop on the same node
    restores from the snapshot the first one saved and reaches the same state."""
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(3, extra=extra) as c:
        c.start()
        leader = c.leader()
        f = followers(c, leader)[0]
        app = IndexedState()
        loop = ApplyLoop(f.socket, app.apply, app.snapshot, app.restore,
                         snapshot_every_entries=50, reconnect_max=0.2).start()
        acked = {}
        with Client(leader.socket) as w:
            def write(n, tag):
                futs = [(w.propose_async(b"%s-%d-" % (tag, i) + b"x" * 8000), i)
                        for i in range(n)]
                for fut, i in futs:
                    p = fut.result(60)
                    acked[p.index] = b"%s-%d-" % (tag, i) + b"x" * 8000
                return max(acked)

            loop.wait_applied(write(100, b"a"), timeout=60)
            f.kill()                                   # SIGKILL under the application
            last = write(120, b"b")                    # the other two commit without it
            f.start()
            loop.wait_applied(last, timeout=60)
            before = loop.connects
            last = write(60, b"c")
            f.kill()                                   # again, while the stream may be mid-way
            f.start()
            last = write(120, b"d")
            loop.wait_applied(last, timeout=60)
            check(loop.connects > before, f"resubscribed: {loop.connects}")
            commit = w.read_index()
        loop.wait_applied(commit, timeout=60)
        log = {e[0]: e[3] for e in stream(leader, commit) if e[0] != "snapshot" and e[2] == "data"}
        with loop.lock:
            check(app.by_index == log, f"state {len(app.by_index)} entries, log {len(log)}")
        check(all(app.by_index[i] == d for i, d in acked.items()), "every acked write applied")
        check(loop.snapshots_saved > 0 and loop.error is None, "snapshots saved by policy")
        loop.stop()
        fst = f.try_status()
        check(fst["snapshot_index"] > 0, fst)
        fresh = IndexedState()
        with ApplyLoop(f.socket, fresh.apply, fresh.snapshot, fresh.restore) as again:
            again.wait_applied(commit, timeout=60)
            with again.lock:
                check(fresh.by_index == log, "a fresh replica rebuilds the same state")
            # 400 entries of 8 KB fill three 1 MiB segments; the snapshots compact them.
            check(fst["first_index"] > 1 and again.restored_from > 0,
                  f"restored from the node's snapshot: {fst}")
            check(again.linearizable_read(timeout=30) >= commit, "linearizable_read")


SCENARIOS = {f.__name__: f for f in (python_ops, raftctl_ops, streams_identical,
                                      compacted_subscriber, kill_leader_stream, bad_input,
                                      kv_restart, kv_replay, apply_loop_restart)}


def main(argv):
    for name in argv[1:] or SCENARIOS:
        SCENARIOS[name]()
        print(f"{name}: ok")


if __name__ == "__main__":
    main(sys.argv)
