"""Test harness: start real raftd processes on loopback and talk to them over the client
protocol (docs/protocol.md) with msgpack. Ports are chosen free at run time, every node lives
in a temporary directory, and every process is killed and reaped when the harness closes,
even when a test fails.

Used by tests/scripts/cluster_*.sh through tests/integration/cluster_test.py.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import shutil

# The framing is clients/python's (the one Python copy), found relative to this file.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients",
                                "python"))
from raftd_client import decode_body, encode_request, read_frame  # noqa: E402


class ProtocolError(Exception):
    def __init__(self, error):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.error = error


class Client:
    """A blocking client for one raftd socket."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.next_id = 1
        self.buf = bytearray()  # a partial frame kept across a socket timeout
        self.events = []

    def close(self):
        self.sock.close()

    def send(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(encode_request(op, rid, **fields))
        return rid

    def read_frame(self):
        body = read_frame(self.sock, self.buf)
        if body is None:
            raise ConnectionError("raftd closed the connection")
        return decode_body(body)

    def wait_reply(self, rid):
        while True:
            m = self.read_frame()
            if "ev" in m:
                self.events.append(m)
                continue
            if m.get("id") == rid:
                if not m.get("ok"):
                    raise ProtocolError(m.get("error", {}))
                return m

    def call(self, op, **fields):
        return self.wait_reply(self.send(op, **fields))


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
    def __init__(self, cluster, node_id, port):
        self.cluster = cluster
        self.id = node_id
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.dir = os.path.join(cluster.root, f"n{node_id}")
        self.data_dir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "raftd.sock")
        self.log_path = os.path.join(self.dir, "raftd.log")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.extra = []

    def args(self):
        c = self.cluster
        a = [c.raftd, "--node-id", str(self.id), "--cluster", c.name,
             "--data-dir", self.data_dir, "--socket", self.socket, "--listen", self.addr,
             "--tick-ms", str(c.tick_ms), "--election-ticks", str(c.election_ticks),
             "--reconnect-min-ms", "20", "--reconnect-max-ms", "500",
             "--log-level", c.log_level, "--log-format", "text"]
        if c.initial:
            a += ["--initial-cluster", ",".join(f"{n.id}={n.addr}" for n in c.initial)]
        return a + self.extra + c.extra

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.cluster.await_(lambda: self.try_status() is not None,
                                f"node {self.id} to serve clients")
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self):
        """SIGTERM; returns the exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def client(self):
        return Client(self.socket)

    def try_status(self):
        try:
            c = self.client()
            try:
                return c.call("status")
            finally:
                c.close()
        except (OSError, ConnectionError, ProtocolError):
            return None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Cluster:
    """A set of raftd nodes in one temporary directory; use as a context manager."""

    def __init__(self, size, name="itest", tick_ms=20, election_ticks=10, log_level="info",
                 extra=None):
        self.raftd = os.path.abspath(
            os.path.join(os.environ.get("RAFTD_BUILD", "build/release"), "bin", "raftd"))
        if not os.access(self.raftd, os.X_OK):
            raise RuntimeError(f"{self.raftd} is not built")
        self.root = tempfile.mkdtemp(prefix="raftd-itest-")
        self.name = name
        self.tick_ms = tick_ms
        self.election_ticks = election_ticks
        self.log_level = log_level
        self.extra = extra or []
        ports = free_ports(size)
        self.nodes = {i + 1: Node(self, i + 1, ports[i]) for i in range(size)}
        self.initial = list(self.nodes.values())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            # Under an ASan/UBSan build a report in any node's log fails the scenario.
            for n in self.nodes.values():
                if n.proc is not None and n.running():
                    n.proc.kill()
                    n.proc.wait()
                if os.path.exists(n.log_path):
                    text = n.log()
                    if "Sanitizer" in text or "runtime error:" in text:
                        self.close(keep_logs=True)
                        raise AssertionError(f"node {n.id}: sanitizer report in its log")
        self.close(keep_logs=exc_type is not None)
        return False

    def close(self, keep_logs=False):
        for n in self.nodes.values():
            if n.running():
                n.proc.kill()
            if n.proc is not None:
                n.proc.wait()
        if keep_logs:
            for n in self.nodes.values():
                if os.path.exists(n.log_path):
                    print(f"---- log of node {n.id} ----")
                    print(n.log()[-4000:])
        shutil.rmtree(self.root, ignore_errors=True)

    def add_node(self, node_id):
        (port,) = free_ports(1)
        n = Node(self, node_id, port)
        self.nodes[node_id] = n
        return n

    def start(self):
        for n in self.nodes.values():
            n.start(wait=False)
        for n in self.nodes.values():
            self.await_(lambda n=n: n.try_status() is not None, f"node {n.id} to serve clients")
        return self

    def running(self):
        return [n for n in self.nodes.values() if n.running()]

    @staticmethod
    def await_(pred, what, timeout=20.0):
        """Polls pred() until it returns a true value; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def leader(self, among=None, timeout=20.0):
        """The node all running members agree leads (same leader id and term)."""
        nodes = among or self.running()

        def agreed():
            sts = [n.try_status() for n in nodes]
            if any(s is None for s in sts):
                return None
            leads = {(s["leader"], s["term"]) for s in sts}
            if len(leads) != 1:
                return None
            lid, _ = leads.pop()
            if lid == 0 or lid not in self.nodes or not self.nodes[lid].running():
                return None
            st = [s for s in sts if s["node_id"] == lid]
            if st and st[0]["role"] != "leader":
                return None
            return self.nodes[lid]

        return self.await_(agreed, "an agreed leader", timeout)

    def propose(self, node, data):
        c = node.client()
        try:
            return c.call("propose", data=data)
        finally:
            c.close()

    def entries(self, node, upto, timeout=20.0):
        """The data entries' payloads 1..upto as node's commit stream delivers them."""
        c = node.client()
        try:
            c.sock.settimeout(timeout)
            rid = c.send("subscribe", **{"from": 1})
            c.wait_reply(rid)
            out = {}
            deadline = time.monotonic() + timeout
            while True:
                evs, c.events = c.events, []
                for ev in evs:
                    if ev.get("ev") == "entry":
                        out[ev["index"]] = (ev["term"], ev["type"], ev.get("data"))
                if out and max(out) >= upto:
                    return out
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {node.id}: stream stopped at {max(out or [0])}")
                m = c.read_frame()
                if "ev" in m:
                    c.events.append(m)
        finally:
            c.close()


def run_scenarios(scenarios, argv):
    """Runs the scenarios named in argv[1:] (all when none), one line each; 1 if any failed."""
    failed = 0
    for name in argv[1:] or list(scenarios):
        t = time.monotonic()
        try:
            scenarios[name]()
            print(f"ok   {name} ({time.monotonic() - t:.1f}s)")
        except (AssertionError, ProtocolError, OSError) as e:
            failed += 1
            print(f"FAIL {name}: {e}")
    return 1 if failed else 0
