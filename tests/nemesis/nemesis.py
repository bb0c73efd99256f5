#!/usr/bin/python3
"""The nemesis driver (issue 14): a raftd cluster on loopback, a KV workload through the
public protocol, a seeded fault schedule, heal, and the checkers of checker.py.

  nemesis.py [--nodes 3|5] [--seconds S] [--seed N] [--raftd PATH]
             [--faults kill,pause,partition,powerloss,clock,membership,corrupt,enospc]

Every node runs as its own uid (so nftables can cut links between nodes on loopback by
socket owner) with its data directory on its own loop-mounted ext4 image (disk.py), so a
power loss can drop what was not fsynced. The workload is a register per key: writes are
proposals {"op": "set", "k", "v"} with unique values, applied from the commit stream by one
replica per node; reads take a read_index on a node and wait for that node's replica to
apply through it. Clients are spread over all nodes, followers included.

The schedule is a pure function of (seed, nodes, seconds, faults): the same seed replays the
same faults on the same nodes at the same offsets (what raftd does in between is up to the
machine's timing). Exit status: 0 all checks hold, 1 a check failed (the seed, schedule,
logs and offending history are saved under build/nemesis/), 2 usage or set-up error, 77 the
machine cannot run it (not root, no loop devices, no nft).
See docs/testing.md.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import msgpack  # noqa: E402
from raftd_client import Client, DeadlineExceeded, RaftdError  # noqa: E402

import checker  # noqa: E402
import clock  # noqa: E402
import disk  # noqa: E402
import disk_faults  # noqa: E402
import members  # noqa: E402

FAULT_KINDS = ("kill", "pause", "partition", "powerloss", "clock", "membership") + disk_faults.KINDS
UID_BASE = 61000          # node i runs as uid/gid UID_BASE + i
KEYS = 6                  # registers in the workload
OP_TIMEOUT = 4.0          # client deadline per operation; a write past it is indeterminate
# How long raftd may hold a write while no leader is known (docs/protocol.md 6.7): below the
# client deadline, so an election that outlasts it ends in a definite UNAVAILABLE.
LEADER_WAIT_MS = 2500
LIVENESS_S = 60.0         # after healing, every node must apply the final write within this
RACK_S = 2.0              # a rack's nodes stay cut off from the rest this long after power returns
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print(f"[{now():7.2f}] {msg}", flush=True)


# ---- the schedule ------------------------------------------------------------------------

def make_schedule(seed, nodes, seconds, faults):
    """[{"at", "kind", "nodes", "dur", ...}], deterministic in its arguments. One fault at a
    time; each lasts 1-4 s and is followed by 1-3 s of calm so the cluster can recover."""
    rng = random.Random(seed)
    ids = list(range(1, nodes + 1))
    out, t = [], rng.uniform(1.0, 2.0)
    while t < seconds - 6.0:
        kind = rng.choice(faults)
        f = {"at": round(t, 3), "kind": kind, "dur": round(rng.uniform(1.0, 4.0), 3)}
        if kind == "partition":
            shape = rng.choice(["minority", "bridge", "oneway"])
            order = rng.sample(ids, nodes)
            if shape == "minority":
                k = rng.randint(1, (nodes - 1) // 2)
                f["sides"] = [sorted(order[:k]), sorted(order[k:])]
            elif shape == "bridge":  # a bridge node sees both halves, which do not see each other
                rest = order[1:]
                half = len(rest) // 2
                f["bridge"] = order[0]
                f["sides"] = [sorted(rest[:half]), sorted(rest[half:])]
            else:  # one node's messages to all others are dropped, or theirs to it
                if rng.random() < 0.5:
                    f["sides"] = [[order[0]], sorted(order[1:])]
                else:
                    f["sides"] = [sorted(order[1:]), [order[0]]]
            f["shape"] = shape
        elif kind == "membership":
            f["pick"] = round(rng.random(), 6)  # the change is chosen at run time (members.py)
        elif kind == "powerloss" and rng.random() < 0.3:
            # Correlated: a majority (or every node) loses power at the same instant, so
            # only what each had fsynced survives anywhere.
            k = rng.choice([nodes // 2 + 1, nodes])
            f["nodes"] = sorted(rng.sample(ids, k))
            rack_fault(rng, f, k < nodes)
        else:
            # A fixed node, or whichever node leads when the fault starts.
            f["nodes"] = ["leader"] if rng.random() < 0.4 else [rng.choice(ids)]
            if kind == "clock":
                clock_fault(rng, f)
        disk_faults.plan(rng, f)
        out.append(f)
        t += f["dur"] + rng.uniform(1.0, 3.0)
    return out


def clock_fault(rng, f):
    """A jump (forward or back, undone when the fault heals) or a rate change (reset when
    it heals, keeping the time gained or lost) of one node's clocks."""
    if rng.random() < 0.6:
        f["mode"] = "jump"
        f["jump"] = round(rng.choice([-1, 1]) * rng.uniform(0.5, 20.0), 3)
    else:
        f["mode"] = "rate"
        f["rate"] = rng.choice([0.25, 0.5, 2.0, 4.0])


def rack_fault(rng, f, some_left):
    """Half of the correlated cuts that spare some nodes are a rack's: its nodes come back
    behind a partition from the rest (the rack's switch is still down) for RACK_S, so they
    can only elect among themselves from what they recovered — the safety issue's bug 1
    schedule (its step 4)."""
    if some_left and rng.random() < 0.5:
        f["rack"] = True


def describe(f):
    if f["kind"] == "membership":
        return f.get("text") or "membership change (chosen when it starts)"
    if f["kind"] == "clock":
        who = ",".join(map(str, f.get("resolved", ["?"] if f["nodes"] == ["leader"]
                                      else f["nodes"])))
        what = (f"jumps {f['jump']:+.1f}s (and back when healed)" if f["mode"] == "jump"
                else f"runs at rate x{f['rate']:g}")
        return f"clock of node {who}{' (the leader)' if f['nodes'] == ['leader'] else ''} " \
               f"{what} for {f['dur']:.1f}s"
    if f["kind"] == "partition":
        s = " | ".join(",".join(map(str, side)) for side in f["sides"])
        if f["shape"] == "bridge":
            s += f" (bridge {f['bridge']})"
        elif f["shape"] == "oneway":
            s = " -> ".join(",".join(map(str, side)) for side in f["sides"]) + " dropped"
        return f"partition {s} for {f['dur']:.1f}s"
    who = ",".join(map(str, f.get("resolved", f["nodes"])))
    if f["nodes"] == ["leader"]:
        who = f"{f['resolved'][0] if f.get('resolved') else '?'} (the leader)"
    rack = f" (a rack: back behind a partition for {RACK_S:g}s)" if f.get("rack") else ""
    return f"{f['kind']} node {who}{rack} for {f['dur']:.1f}s" + disk_faults.describe_extra(f)


# ---- network: nftables rules on loopback, by socket owner --------------------------------

class Net:
    """Cuts links between nodes on loopback. Every node listens on 127.0.0.1:port_i and runs
    as uid_i; a message from i to j travels on the connection i dialled to port_j (the peer
    protocol uses one connection per direction), so dropping packets owned by uid_i to
    port_j in the output hook cuts i -> j, including i's reconnection attempts. Only our own
    nodes' packets match. The table is ours alone and deleted at the end."""

    def __init__(self, nodes):
        self.table = f"nemesis_{os.getpid()}"
        self.nodes = nodes
        nft(f"add table inet {self.table}")
        nft(f"add chain inet {self.table} out {{ type filter hook output priority 0 ; }}")

    def cut(self, a, b, oneway=False):
        """Drops a -> b and (unless oneway) b -> a."""
        for x, y in ((a, b),) if oneway else ((a, b), (b, a)):
            nx, ny = self.nodes[x], self.nodes[y]
            nft(f"add rule inet {self.table} out meta skuid {nx.uid} ip daddr 127.0.0.1 "
                f"tcp dport {ny.port} drop")

    def heal(self):
        nft(f"flush chain inet {self.table} out")

    def close(self):
        nft(f"delete table inet {self.table}", check=False)


def nft(cmd, check=True):
    r = subprocess.run(["nft"] + cmd.split(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"nft {cmd}: {r.stdout.strip()}")


# ---- nodes ---------------------------------------------------------------------------------

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Node:
    def __init__(self, run, node_id, port):
        self.run = run
        self.id = node_id
        self.port = port
        self.uid = UID_BASE + node_id
        self.dir = os.path.join(run.work, f"n{node_id}")
        os.makedirs(self.dir)
        os.chown(self.dir, self.uid, self.uid)
        self.socket = os.path.join(self.dir, "raftd.sock")
        self.log_path = os.path.join(self.dir, "raftd.log")
        self.disk = disk.LoopDisk(run.work, f"n{node_id}", owner=(self.uid, self.uid))
        self.proc = None
        self.paused = False
        self.down = False          # stopped by the nemesis (kill, power loss)
        self.cut_pending = False
        self.cuts = []             # (disk generation after a power cut, applied at the cut)
        self.cut_configs = {}      # disk generation -> config indexes delivered before it
        # "member": started (an initial node, or a spare named in a change); "spare": never
        # started; "retired": removed from the configuration and stopped for good.
        self.state = "member" if node_id <= run.a.nodes else "spare"
        self.clock = (clock.FakeClock(os.path.join(self.dir, "faketime"))
                      if "clock" in run.a.faults else None)

    @property
    def data_dir(self):
        return os.path.join(self.disk.mnt, "data")

    def prepare(self):
        self.disk.create()
        os.makedirs(self.data_dir)
        os.chown(self.data_dir, self.uid, self.uid)
        disk.run("sync", "-f", self.disk.mnt)

    def start(self):
        r = self.run
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                *r.a.wrapper.split(), r.raftd, "--node-id", str(self.id), "--cluster", "nemesis",
                "--data-dir", self.data_dir, "--socket", self.socket,
                "--listen", f"127.0.0.1:{self.port}", "--tick-ms", "20",
                "--election-ticks", "10", "--reconnect-min-ms", "20",
                "--reconnect-max-ms", "300", "--wal-segment-size", "1MiB",
                "--log-level", "info", "--log-format", "text"]
        if self.id <= r.a.nodes:
            argv += ["--initial-cluster", ",".join(f"{n.id}=127.0.0.1:{n.port}"
                                                   for n in r.nodes.values()
                                                   if n.id <= r.a.nodes)]
        else:
            argv += ["--join"]  # a spare joins as docs/operations.md section 5 says
        if self.clock:
            # Only raftd runs faked (setpriv, started as root, is not).
            i = argv.index(r.raftd)
            argv[i:i] = ["env"] + [f"{k}={v}" for k, v in self.clock.env().items()]
            self.clock.on_start()
        with open(self.log_path, "ab") as logf:
            logf.write(f"---- start at {now():.2f} (disk generation "
                       f"{self.disk.generation}) ----\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.paused = False
        self.down = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def kill(self):
        self.down = True
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        self.paused = False

    def died(self):
        """Why the node is not running although the nemesis did not stop it, else None."""
        if self.down or self.proc is None or self.running():
            return None
        tail = ""
        try:
            with open(self.log_path, errors="replace") as f:
                tail = " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            pass
        return f"node {self.id} exited on its own with status {self.proc.returncode}: {tail}"

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def ready(self):
        try:
            with Client(self.socket, timeout=1.0, name=None) as c:
                c.status()
            return True
        except (RaftdError, OSError):
            return False


# ---- the application: one replica per node -------------------------------------------------

def encode(k, v):
    return msgpack.packb({"op": "set", "k": k, "v": v}, use_bin_type=True)


def ident(data):
    try:
        return msgpack.unpackb(data, raw=False).get("v")
    except Exception:
        return None


class Replica(threading.Thread):
    """The KV state machine of one node: applies that node's commit stream, reconnecting
    after the node restarts, and records every delivery for the stream checks."""

    def __init__(self, run, node):
        super().__init__(daemon=True, name=f"replica-{node.id}")
        self.run_ = run
        self.node = node
        self.state = {}
        self.applied = 0
        self.cond = threading.Condition()
        self.deliveries = []      # (node, index, term, type, data)
        self.anomalies = []
        self.stopped = False      # the node was removed from the cluster: its stream ends
        self.configs = []         # indexes of the config entries delivered

    def run(self):
        while not self.run_.stopping_replicas and not self.stopped:
            try:
                with Client(self.node.socket, timeout=2.0, name=None) as c:
                    sub = c.subscribe(from_=self.applied + 1, timeout=0.5)
                    while not self.run_.stopping_replicas and not self.stopped:
                        ev = sub.next(0.5)
                        if ev is None:
                            continue
                        self.apply(ev)
            except (RaftdError, OSError, StopIteration):
                pass
            time.sleep(0.05)

    def apply(self, ev):
        if ev.kind == "snapshot":
            # The workload takes no snapshots, so raftd has none to send.
            self.anomalies.append(f"node {self.node.id}: unexpected snapshot at {ev.index}")
            return
        with self.cond:
            if ev.index != self.applied + 1:
                self.anomalies.append(f"node {self.node.id}: stream gap: index {ev.index} "
                                      f"after {self.applied}")
                return
            self.deliveries.append((self.node.id, ev.index, ev.term, ev.type, ev.data))
            if ev.type == "config":
                self.configs.append(ev.index)
            if ev.type == "data":
                c = msgpack.unpackb(ev.data, raw=False)
                self.state[c["k"]] = c["v"]
            self.applied = ev.index
            self.cond.notify_all()

    def wait_applied(self, index, timeout):
        """The value map through `index` (a copy of one key's value is taken by the caller
        under the lock), or None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.applied < index:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


# ---- clients -------------------------------------------------------------------------------

class Worker(threading.Thread):
    def __init__(self, run, cid, node, seed):
        super().__init__(daemon=True, name=f"client-{cid}")
        self.run_ = run
        self.cid = cid
        self.node = node
        self.rng = random.Random(seed * 1000 + cid)
        self.seq = 0
        self.conn = None

    def client(self):
        if self.conn is None:
            self.conn = Client(self.node.socket, timeout=OP_TIMEOUT, name=None)
        return self.conn

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def run(self):
        r = self.run_
        while not r.stopping_clients:
            try:
                if self.rng.random() < 0.5:
                    # Up to `pipeline` proposals in flight on the connection at once, so a
                    # leader change finds several pending (protocol.md 3.3).
                    n = self.rng.randint(1, r.a.pipeline)
                    self.write([f"k{self.rng.randrange(KEYS)}" for _ in range(n)])
                else:
                    self.read(f"k{self.rng.randrange(KEYS)}")
            except Exception as e:  # a bug in the harness must not hang the run
                r.harness_errors.append(f"client {self.cid}: {type(e).__name__}: {e}")
                self.drop()
                time.sleep(0.1)

    def write(self, keys):
        r = self.run_
        ops = []
        for key in keys:
            self.seq += 1
            v = f"c{self.cid}-{self.seq}"
            ops.append(({"client": self.cid, "node": self.node.id, "f": "w", "key": key,
                         "value": v, "call": now(), "ret": None}, encode(key, v)))
        try:
            c = self.client()
        except RaftdError as e:
            # The node's socket refused the connection: nothing was sent.
            for op, data in ops:
                op["error"] = e.code
                r.record(op, "refused")
                r.unavailable.append(data)
            time.sleep(0.05)
            return
        sent = []
        for op, data in ops:
            try:
                sent.append((op, data, c.propose_async(data, timeout_ms=LEADER_WAIT_MS)))
            except RaftdError as e:
                # The send failed part-way: this one may have reached raftd, later ones not.
                op["error"] = e.code
                r.record(op, "indeterminate")
                break
        for op, data in ops[len(sent) + 1:]:
            op["error"] = "NOT_SENT"
            r.record(op, "refused")
            r.unavailable.append(data)
        trouble = len(sent) < len(ops)
        for op, data, rid in sent:
            try:
                m = c.result(rid)
                op["ret"] = now()
                op["index"], op["term"] = m["index"], m["term"]
                r.record(op, "ok")
                r.acked.append((data, m["index"], m["term"]))
            except RaftdError as e:
                op["error"] = e.code
                if e.code in ("UNAVAILABLE", "BUSY"):
                    # Not appended anywhere: definitely no effect (protocol.md section 5).
                    r.record(op, "unavailable")
                    r.unavailable.append(data)
                else:
                    r.record(op, "indeterminate")
                if e.code in ("CONNECTION", "TIMEOUT") or isinstance(e, DeadlineExceeded):
                    trouble = True
        if trouble:
            self.drop()
            time.sleep(0.05)

    def read(self, key):
        r = self.run_
        rep = r.replicas[self.node.id]
        op = {"client": self.cid, "node": self.node.id, "f": "r", "key": key, "call": now()}
        try:
            idx = self.client().read_index()
        except RaftdError as e:
            r.bump("read_failed")
            if e.code in ("CONNECTION", "TIMEOUT"):
                self.drop()
                time.sleep(0.05)
            elif e.code == "UNAVAILABLE":
                time.sleep(0.05)
            return
        if not rep.wait_applied(idx, OP_TIMEOUT):
            r.bump("read_failed")
            return
        with rep.cond:
            op["value"] = rep.state.get(key)
            op["index"] = idx
        op["ret"] = now()
        r.record(op, "ok")


# ---- the run -------------------------------------------------------------------------------

class Run:
    def __init__(self, a):
        self.a = a
        self.raftd = os.path.abspath(a.raftd or os.path.join(
            os.environ.get("RAFTD_BUILD", os.path.join(ROOT, "build", "release")), "bin", "raftd"))
        self.work = tempfile.mkdtemp(prefix=f"nemesis-{a.seed}-", dir=a.workdir)
        os.chmod(self.work, 0o755)
        ports = free_ports(a.nodes + a.spares)
        self.nodes = {}  # initial nodes 1..a.nodes, then spares (members.py)
        for i in range(1, a.nodes + a.spares + 1):
            self.nodes[i] = Node(self, i, ports[i - 1])
        self.membership = members.Membership(self, a.spares) \
            if "membership" in a.faults else None
        self.net = None
        self.history = []
        self.acked = []
        self.unavailable = []
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "indeterminate": 0, "unavailable": 0, "refused": 0,
                       "read_failed": 0,
                       "w_ok": 0, "r_ok": 0}
        self.injected = {k: 0 for k in FAULT_KINDS}
        self.stopping_clients = False
        self.stopping_replicas = False
        self.harness_errors = []
        self.died = []
        self.replicas = {}
        self.workers = []

    def bump(self, what):
        with self.lock:
            self.counts[what] += 1

    def record(self, op, outcome):
        with self.lock:
            self.counts[outcome] += 1
            if outcome == "ok":
                self.counts["w_ok" if op["f"] == "w" else "r_ok"] += 1
            if outcome not in ("unavailable", "refused"):
                self.history.append(op)

    def setup(self):
        self.net = Net(self.nodes)
        for n in self.member_nodes():
            n.prepare()
        for n in self.member_nodes():
            n.start()
        deadline = time.monotonic() + 30
        while not all(n.ready() for n in self.member_nodes()):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not start serving within 30 s")
            time.sleep(0.05)
        # Wait for a leader so the first seconds of history are not all UNAVAILABLE.
        deadline = time.monotonic() + 30
        while True:
            try:
                with Client(self.nodes[1].socket, timeout=5, name=None) as c:
                    c.read_index()
                break
            except RaftdError:
                if time.monotonic() > deadline:
                    raise RuntimeError("no leader within 30 s")
                time.sleep(0.1)
        for n in self.member_nodes():
            self.replicas[n.id] = Replica(self, n)
            self.replicas[n.id].start()
        ids = sorted(n.id for n in self.member_nodes())
        for cid in range(self.a.clients):
            w = Worker(self, cid, self.nodes[ids[cid % len(ids)]], self.a.seed)
            self.workers.append(w)

    def leader(self):
        """The leader as some running, unpaused node reports it (0: none known)."""
        for n in self.nodes.values():
            if n.running() and not n.paused:
                try:
                    with Client(n.socket, timeout=1.0, name=None) as c:
                        lid = c.status()["leader"]
                    if lid:
                        return lid
                except (RaftdError, OSError):
                    pass
        return 0

    def targets(self, f):
        if f["nodes"] == ["leader"]:
            lid = self.leader()
            f["resolved"] = [lid if lid in self.member_ids() else min(self.member_ids())]
        else:
            f["resolved"] = self.remap(list(f["nodes"]))
        return [self.nodes[i] for i in f["resolved"]]

    def inject(self, f):
        self.injected[f["kind"]] += 1
        if f["kind"] in ("membership", "clock"):
            return self.step(f, heal=False)
        if f["kind"] == "partition":
            a, b = self.remap_sides(f)
            for x in a:
                for y in b:
                    self.net.cut(x, y, oneway=f["shape"] == "oneway")
            return
        nodes = self.targets(f)
        if f["kind"] == "kill":
            for n in nodes:
                n.kill()
        elif f["kind"] == "pause":
            for n in nodes:
                n.pause()
        elif f["kind"] in disk_faults.KINDS:
            disk_faults.inject(self, nodes, f)
        elif f["kind"] == "powerloss":
            # Every target stops first, so the cut is one instant for all of them.
            for n in nodes:
                n.signal(signal.SIGSTOP)
            copies = [n.disk.cut() for n in nodes]
            for n, copy in zip(nodes, copies):
                n.kill()
                n.disk.switch_to_copy(copy)
                n.cut_pending = True

    def heal(self, f):
        if f["kind"] in ("membership", "clock"):
            return self.step(f, heal=True)
        if f["kind"] == "partition":
            self.net.heal()
            return
        if f.get("rack"):
            self.rack_cut(f["resolved"])
        if f["kind"] in disk_faults.KINDS:
            return disk_faults.heal(self, f)
        for i in f["resolved"]:
            n = self.nodes[i]
            if f["kind"] in ("kill", "powerloss"):
                self.note_cut(n)
                n.start()
            elif f["kind"] == "pause":
                n.resume()
        if f.get("rack"):
            time.sleep(RACK_S)
            self.net.heal()

    def check_died(self):
        for n in self.nodes.values():
            why = n.died()
            if why and why not in self.died:
                self.died.append(why)
                log("! " + why)

    def heal_all(self):
        self.check_died()
        self.net.heal()
        for n in self.member_nodes():
            if n.paused:
                n.resume()
            if not n.running():
                self.note_cut(n)
                n.start()
        if self.membership and not self.membership.heal_all():
            log("! a never-started voter could not be removed within 30 s")

    def note_cut(self, n):
        """Before a node restarts after a power cut: everything its stream delivered before
        the cut must have been durable (docs/raft.md, durability invariants), so the log it
        recovers must reach at least that far. The replica cannot receive anything while
        the node is down, so its applied index now is what was delivered before the cut."""
        if n.cut_pending:
            n.cut_pending = False
            n.cuts.append((n.disk.generation, self.replicas[n.id].applied))
            n.cut_configs[n.disk.generation] = list(self.replicas[n.id].configs)

    def nemesis(self, schedule, start):
        for i, f in enumerate(schedule):
            wait = start + f["at"] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.check_died()
            t = now()
            self.inject(f)
            time.sleep(f["dur"])
            self.heal(f)
            with self.lock:
                c = dict(self.counts)
            log(f"fault {i + 1}/{len(schedule)} {describe(f)} (at {t:.1f}s, healed "
                f"{now():.1f}s) ops ok {c['ok']} indet {c['indeterminate']} "
                f"unavail {c['unavailable']} refused {c['refused']}")

    def final_write(self):
        """A write after healing, retried on any node until acknowledged: the index every
        node must reach."""
        deadline = time.monotonic() + LIVENESS_S
        i = 0
        while time.monotonic() < deadline:
            live = self.member_nodes()
            n = live[i % len(live)]
            i += 1
            data = encode("final", f"final-{i}")
            try:
                with Client(n.socket, timeout=OP_TIMEOUT, name=None) as c:
                    p = c.propose(data)
                self.acked.append((data, p.index, p.term))
                return p.index, deadline
            except RaftdError as e:
                if e.code == "UNAVAILABLE":
                    self.unavailable.append(data)
                time.sleep(0.2)
        return None, deadline

    def execute(self):
        a = self.a
        schedule = make_schedule(a.seed, a.nodes, a.seconds, a.faults)
        self.schedule = schedule
        log(f"seed {a.seed}: {a.nodes} nodes, {a.seconds:.0f}s, faults {','.join(a.faults)}, "
            f"{len(schedule)} faults scheduled, {a.clients} clients, raftd {self.raftd}")
        self.setup()
        start = time.monotonic()
        for w in self.workers:
            w.start()
        nem = threading.Thread(target=self.nemesis, args=(schedule, start), daemon=True)
        nem.start()
        nem.join()
        left = start + a.seconds - time.monotonic()
        if left > 0:
            time.sleep(left)
        self.stopping_clients = True
        for w in self.workers:
            w.join(OP_TIMEOUT + 5)
            w.drop()
        log("workload stopped; healing every fault")
        self.heal_all()
        index, deadline = self.final_write()
        live = []
        if index is None:
            live.append(f"no write was acknowledged within {LIVENESS_S:.0f}s after healing")
        else:
            for n in self.liveness_nodes():
                if not self.replicas[n.id].wait_applied(index, max(0.1, deadline -
                                                                   time.monotonic())):
                    live.append(f"node {n.id} applied only through "
                                f"{self.replicas[n.id].applied}, not the final write at "
                                f"{index}, within {LIVENESS_S:.0f}s of healing")
            log(f"final write at index {index}: "
                f"{'every node applied it' if not live else 'NOT every node applied it'}")
        self.stopping_replicas = True
        for r in self.replicas.values():
            r.join(5)
        return self.check(live)

    def check(self, live):
        t = time.monotonic()
        deliveries = [d for r in self.replicas.values() for d in r.deliveries]
        stream_errors = checker.check_streams(deliveries, self.acked, self.unavailable, ident)
        anomalies = [x for r in self.replicas.values() for x in r.anomalies] + self.died
        anomalies += self.check_recoveries()
        claims = self.leader_claims()
        anomalies += checker.check_leaders(claims)
        disk_outcomes, disk_violations = disk_faults.results(self)
        anomalies += disk_violations
        lin = checker.check_kv(self.history, budget_s=self.a.check_seconds)
        log(f"checked {len(deliveries)} deliveries and {len(self.history)} operations in "
            f"{time.monotonic() - t:.1f}s")
        lost = sum(1 for e in stream_errors if "is lost" in e or "no node delivered" in e)
        res = {"seed": self.a.seed, "nodes": self.a.nodes, "seconds": self.a.seconds,
               "faults": self.injected, "ops": dict(self.counts),
               "lost_acknowledged": lost, "stream_errors": stream_errors,
               "anomalies": anomalies, "liveness": live,
               "recoveries_checked": self.recoveries_checked, "linearizable": lin["ok"],
               "leader_terms": len({t for _, t in claims}),
               "membership": dict(self.membership.counts) if self.membership else {},
               "disk_outcomes": disk_outcomes,
               "linearizability": lin, "harness_errors": self.harness_errors[:20]}
        return res

    # ---- members coming and going (members.py), clocks (clock.py) -----------------------

    def member_nodes(self):
        return [n for n in self.nodes.values() if n.state == "member"]

    def member_ids(self):
        return sorted(n.id for n in self.member_nodes())

    def remap(self, ids):
        """Schedule slots 1..nodes onto the current members (identity without membership)."""
        if not self.membership:
            return ids
        return members.remap_ids(ids, self.member_ids(), self.a.nodes)

    def remap_sides(self, f):
        if self.membership:
            f.setdefault("slot_sides", f["sides"])
            ids = self.member_ids()
            sides = members.remap_sides(f["slot_sides"], ids, self.a.nodes,
                                        f"{self.a.seed}-{f['at']}")
            if f["shape"] == "bridge":
                f.setdefault("slot_bridge", f["bridge"])
                f["bridge"] = members.remap_ids([f["slot_bridge"]], ids, self.a.nodes)[0]
                sides = [[x for x in s if x != f["bridge"]] for s in sides]
            f["sides"] = sides
        return f["sides"]

    def free_port(self):
        return free_ports(1)[0]

    def join_node(self, n):
        """Starts a spare named in a membership change, with --join, and its replica; a new
        spare takes its place in the pool."""
        if n.state != "spare":
            return
        n.prepare()
        n.state = "member"
        n.start()
        self.replicas[n.id] = Replica(self, n)
        self.replicas[n.id].start()
        nid = max(self.nodes) + 1
        self.nodes[nid] = Node(self, nid, self.free_port())

    def retire_node(self, n):
        """A node removed from the configuration: stopped, never started again; its stream
        ends there and its clients move to the member with the fewest."""
        if n.state != "member":
            return
        n.resume()
        n.kill()
        n.state = "retired"
        self.replicas[n.id].stopped = True
        for w in self.workers:
            if w.node is n:
                load = {m.id: 0 for m in self.member_nodes()}
                for x in self.workers:
                    if x.node.id in load:
                        load[x.node.id] += 1
                w.node = self.nodes[min(load, key=lambda i: (load[i], i))]

    def liveness_nodes(self):
        """The real nodes of the configuration after healing (every started member if it
        could not be read): the ones that must apply the final write."""
        final = self.membership.final if self.membership else None
        if final is None:
            return self.member_nodes()
        return [self.nodes[i] for i in final if i in self.nodes]

    def rack_cut(self, rack):
        """Cuts the rack's nodes off from every other member, both ways."""
        for x in rack:
            for y in self.member_ids():
                if y not in rack:
                    self.net.cut(x, y)

    def step(self, f, heal):
        """Injects or heals a membership or clock fault."""
        if f["kind"] == "membership":
            (self.membership.heal if heal else self.membership.inject)(f)
            f["text"] = self.membership.describe(f)
            return
        n = self.nodes[f["resolved"][0]] if heal else self.targets(f)[0]
        if f["mode"] == "jump":
            n.clock.jump(-f["jump"] if heal else f["jump"])
        elif heal:
            n.clock.reset_rate()
        else:
            n.clock.set_rate(f["rate"])

    def leader_claims(self):
        """(node, term) of every 'became leader at term T' line in every node's log."""
        out = []
        for n in self.nodes.values():
            try:
                with open(n.log_path, errors="replace") as f:
                    for m in re.finditer(r"became leader at term (\d+)", f.read()):
                        out.append((n.id, int(m.group(1))))
            except OSError:
                continue
        return out

    def check_recoveries(self):
        """After each power cut, from the node's 'recovered:' log line (operations.md): the
        recovered log reaches every index its stream delivered before the cut, and the
        recovered commit index does not exceed the last recovered entry."""
        out = []
        self.recoveries_checked = 0
        for n in self.nodes.values():
            if not n.cuts:
                continue
            try:
                with open(n.log_path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for gen, applied in n.cuts:
                m = re.search(r"---- start at [0-9.]+ \(disk generation %d\) ----\n(.*?)"
                              r"(?:---- start at|\Z)" % gen, text, re.S)
                rec = m and re.search(r"recovered: term \d+ vote \d+ commit (\d+) log "
                                      r"\[(\d+), (\d+)\]", m.group(1))
                if not rec:
                    continue  # no such line in this build's log: not checked
                self.recoveries_checked += 1
                commit, last = int(rec.group(1)), int(rec.group(3))
                if last < applied:
                    out.append(f"node {n.id}: after power cut {gen} it recovered its log only "
                               f"through {last}, but before the cut its stream had delivered "
                               f"entries through {applied} (a delivered entry was not durable)")
                if commit > last:
                    out.append(f"node {n.id}: after power cut {gen} it recovered commit "
                               f"{commit} beyond its last entry {last}")
                why = checker.check_config_recovery(commit, n.cut_configs.get(gen, []))
                if why:
                    out.append(f"node {n.id}: after power cut {gen}: {why}")
        return out

    def cleanup(self):
        self.stopping_clients = self.stopping_replicas = True
        for n in self.nodes.values():
            try:
                n.resume()
                n.kill()
            except Exception:
                pass
        if self.net:
            self.net.close()
        for n in self.nodes.values():
            try:
                n.disk.destroy()
            except Exception as e:
                print(f"cleanup: node {n.id}: {e}", file=sys.stderr)

    def save_failure(self, res):
        out = os.path.join(self.a.out, f"seed-{self.a.seed}-{int(time.time())}")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump(res, f, indent=1, default=str)
        with open(os.path.join(out, "schedule.json"), "w") as f:
            json.dump({"seed": self.a.seed, "nodes": self.a.nodes, "seconds": self.a.seconds,
                       "faults": self.a.faults, "schedule": self.schedule}, f, indent=1)
        # The offending slice: per non-linearizable key, its operations from 3 s before to
        # 1 s after the first one no linearization could place; the whole history too.
        lin = res["linearizability"]
        with open(os.path.join(out, "history-slice.jsonl"), "w") as f:
            for op in sorted(self.history, key=lambda o: o["call"]):
                t = lin["bad_at"].get(op["key"])
                if t is not None and t - 3.0 <= op["call"] <= t + 1.0:
                    f.write(json.dumps(op) + "\n")
        with open(os.path.join(out, "history.jsonl"), "w") as f:
            for op in sorted(self.history, key=lambda o: o["call"]):
                f.write(json.dumps(op) + "\n")
        for n in self.nodes.values():
            if os.path.exists(n.log_path):
                shutil.copy(n.log_path, os.path.join(out, f"raftd-{n.id}.log"))
        with open(os.path.join(out, "streams.jsonl"), "w") as f:
            for r in self.replicas.values():
                for node, index, term, typ, data in r.deliveries:
                    f.write(json.dumps([node, index, term, typ, ident(data) if typ == "data"
                                        else ""]) + "\n")
        return out


def summary(res):
    f, o = res["faults"], res["ops"]
    lin = {True: "yes", False: "NO", None: "unknown (search budget exceeded)"}[res["linearizable"]]
    rows = [("seed", res["seed"]), ("nodes", res["nodes"]),
            ("faults injected", ", ".join(f"{k} {v}" for k, v in f.items())),
            ("ops ok", f"{o['ok']} (writes {o['w_ok']}, reads {o['r_ok']})"),
            ("ops indeterminate", o["indeterminate"]),
            ("ops unavailable", o["unavailable"]),
            ("writes refused (node down)", o["refused"]),
            ("reads failed (no effect)", o["read_failed"]),
            ("lost acknowledged", res["lost_acknowledged"]),
            ("recoveries after a cut checked", res.get("recoveries_checked", 0)),
            ("terms with a leader (logs)", res.get("leader_terms", 0)),
            ("disk fault outcomes", ", ".join(f"{k} {v}" for k, v in
                                              res.get("disk_outcomes", {}).items()) or "-"),
            ("stream violations", len(res["stream_errors"])),
            ("liveness after heal", "ok" if not res["liveness"] else "FAILED"),
            ("linearizable", lin)]
    if res.get("membership"):
        rows.insert(3, ("membership changes", ", ".join(f"{k} {v}" for k, v in
                                                        sorted(res["membership"].items()))))
    w = max(len(k) for k, _ in rows)
    print("-" * (w + 40))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print("-" * (w + 40))
    for e in res["stream_errors"][:10] + res["anomalies"][:10] + res["liveness"]:
        print("  !", e)
    for k, why in res["linearizability"]["bad"].items():
        print(f"  ! key {k}: {why}")
    for e in res["harness_errors"][:5]:
        print("  harness:", e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=3, choices=[3, 5])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--faults", default=",".join(FAULT_KINDS))
    ap.add_argument("--clients", type=int, default=None, help="default: 2 per node")
    ap.add_argument("--pipeline", type=int, default=4,
                    help="a client's writes go out in batches of 1..N pipelined proposals")
    ap.add_argument("--check-seconds", type=float, default=120.0,
                    help="time budget of the linearizability search")
    ap.add_argument("--workdir", default=None, help="where images live (default $TMPDIR)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "nemesis"))
    ap.add_argument("--wrapper", default="",
                    help="a command raftd runs under, e.g. 'eatmydata' (fsync becomes a "
                         "no-op) to check that the suite catches lost writes")
    ap.add_argument("--spares", type=int, default=None,
                    help="spare nodes that may join (default: 2 with the membership fault)")
    ap.add_argument("--raftd", default=None,
                    help="the raftd binary to test (default: $RAFTD_BUILD/bin/raftd or "
                         "build/release/bin/raftd)")
    ap.add_argument("--keep", action="store_true",
                    help="save the schedule, history and logs under --out even if it passed")
    ap.add_argument("--print-schedule", action="store_true",
                    help="print the schedule for the seed and exit")
    a = ap.parse_args()
    a.faults = [f for f in a.faults.split(",") if f]
    for f in a.faults:
        if f not in FAULT_KINDS:
            print(f"nemesis: unknown fault {f!r} (known: {', '.join(FAULT_KINDS)})")
            return 2
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    a.clients = a.clients or 2 * a.nodes
    if a.spares is None:
        a.spares = 2 if "membership" in a.faults else 0
    if a.print_schedule:
        for f in make_schedule(a.seed, a.nodes, a.seconds, a.faults):
            print(f"{f['at']:8.3f}s  {describe(f)}")
        return 0
    why = disk.available()
    if why is None and shutil.which("nft") is None:
        why = "nft not installed (make deps)"
    if why is None and shutil.which("setpriv") is None:
        why = "setpriv not installed"
    if why is None and "clock" in a.faults and clock.library() is None:
        why = "libfaketime not installed (make deps)"
    if why:
        print(f"nemesis: skipped: {why}")
        return 77
    print(f"nemesis: seed {a.seed} (replay: tests/nemesis/nemesis.py --seed {a.seed} "
          f"--nodes {a.nodes} --seconds {a.seconds:g} --faults {','.join(a.faults)}"
          f"{' --raftd ' + a.raftd if a.raftd else ''})",
          flush=True)

    def on_term(signum, frame):
        raise SystemExit(f"nemesis: signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    run = Run(a)
    res = None
    try:
        with disk.WritebackHold():
            try:
                res = run.execute()
            except BaseException:
                for n in run.nodes.values():
                    if os.path.exists(n.log_path):
                        with open(n.log_path, errors="replace") as f:
                            print(f"---- node {n.id} log (tail) ----\n" + f.read()[-2000:])
                raise
            finally:
                run.cleanup()
        summary(res)
        failed = (res["stream_errors"] or res["anomalies"] or res["liveness"]
                  or res["harness_errors"] or res["linearizable"] is False)
        if failed:
            out = run.save_failure(res)
            print(f"nemesis: FAILED, seed {a.seed}; schedule, history and logs in {out}")
            return 1
        if a.keep:
            print(f"nemesis: evidence kept in {run.save_failure(res)}")
        if res["linearizable"] is None:
            print(f"nemesis: inconclusive (search budget), seed {a.seed}")
        print(f"nemesis: passed, seed {a.seed}")
        return 0
    finally:
        shutil.rmtree(run.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
