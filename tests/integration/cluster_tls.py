"""Peer TLS scenarios against real raftd processes (run by tests/scripts/cluster_tls*.sh).

    /usr/bin/python3 tests/integration/cluster_tls.py SCENARIO...

Certificates are made per scenario by tools/peer-certs.sh in the cluster's temporary
directory (faketime for expired and not-yet-valid ones). Conditions are awaited with
deadlines, as in cluster_test.py.
"""
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import msgpack  # noqa: E402
from raftd_cluster import Cluster, ProtocolError, run_scenarios  # noqa: E402
from cluster_test import (assert_has, await_commit, check, propose_many,  # noqa: E402
                          propose_on_each, snapshot_catchup)

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                     "peer-certs.sh")
CLUSTER = "tls"


def certs(*args, faketime=None):
    cmd = ["bash", CERTS, *[str(a) for a in args]]
    if faketime:
        cmd = ["faketime", "-f", faketime] + cmd
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def tls_cluster(size=3, extra=None, crl=False):
    """A Cluster whose nodes run peer TLS with certificates of pki/ca.pem."""
    c = Cluster(size, name=CLUSTER, extra=extra)
    c.pki = os.path.join(c.root, "pki")
    certs("ca", c.pki)
    if crl:
        certs("crl", c.pki)
    for n in c.nodes.values():
        certs("node", c.pki, CLUSTER, n.id)
        n.extra = tls_args(c.pki, f"node-{n.id}", crl=crl)
    return c


def tls_args(pki, name, crl=False, ca=None):
    a = ["--peer-tls-cert", f"{pki}/{name}.pem", "--peer-tls-key", f"{pki}/{name}.key",
         "--peer-tls-ca", ca or f"{pki}/ca.pem"]
    return a + (["--peer-tls-crl", f"{pki}/crl.pem"] if crl else [])


def count(node, text):
    return node.log().count(text)


class Load:
    """Proposals in a loop on a background thread; keeps every acknowledged entry."""

    def __init__(self, c):
        self.c = c
        self.acked = {}
        self.errors = []
        self.stop_ = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop_.is_set():
            try:
                leader = self.c.leader()
                cl = leader.client()
                try:
                    while not self.stop_.is_set():
                        ids = {}
                        for _ in range(20):
                            data = f"load-{i}".encode()
                            i += 1
                            ids[cl.send("propose", data=data)] = data
                        for rid, data in ids.items():
                            r = cl.wait_reply(rid)
                            self.acked[r["index"]] = (r["term"], data)
                finally:
                    cl.close()
            except (ProtocolError, ConnectionError, OSError, AssertionError) as e:
                self.errors.append(repr(e))
                time.sleep(0.05)

    def stop(self):
        self.stop_.set()
        self.t.join(timeout=30)
        return self.acked


# ---- scenarios ------------------------------------------------------------------------------

def tls_cluster_ops():
    """Election, replication, snapshot transfer, restart and certificate rotation by SIGHUP
    under load, all over TLS."""
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with tls_cluster(extra=extra) as c:
        c.start()
        leader = c.leader()
        for n in c.nodes.values():
            check(f"peer TLS on: /CN=raftd {CLUSTER} node {n.id}" in n.log(),
                  f"node {n.id} logs its certificate")
        # Replication (followers forward), then a snapshot transfer to a follower that was
        # away during compaction.
        propose_on_each(c)
        snapshot_catchup(c, leader)

        # Restart: the leader stops cleanly, another is elected, it comes back and converges.
        check(leader.stop() == 0, "leader stops cleanly")
        new = c.leader(among=c.running())
        more = propose_many(c, new, 10, "restart")
        leader.start()
        await_commit(c, leader, max(more))
        assert_has(c, leader, more)

        # Rotation to a new CA under load, one SIGHUP per step, no link dropped:
        # 1) trust both CAs, 2) new node certificates from the new CA, 3) trust only it.
        pki2 = os.path.join(c.root, "pki2")
        certs("ca", pki2)
        bundle = os.path.join(c.root, "bundle.pem")
        with open(bundle, "w") as out:
            out.write(open(f"{c.pki}/ca.pem").read() + open(f"{pki2}/ca.pem").read())
        ca_file = os.path.join(c.root, "ca-current.pem")
        with open(ca_file, "w") as out:
            out.write(open(f"{c.pki}/ca.pem").read())
        # The nodes are restarted on files that rotation rewrites in place.
        for n in c.nodes.values():
            check(n.stop() == 0, f"node {n.id} stops cleanly")
            n.extra = ["--peer-tls-cert", f"{c.pki}/node-{n.id}.pem", "--peer-tls-key",
                       f"{c.pki}/node-{n.id}.key", "--peer-tls-ca", ca_file]
        c.start()
        c.leader()
        load = Load(c)
        c.await_(lambda: len(load.acked) >= 100, "load to commit entries")
        lost_before = {n.id: count(n, "connection lost") for n in c.nodes.values()}

        def sighup_all(step):
            for n in c.nodes.values():
                before = count(n, "SIGHUP: peer TLS reloaded")
                n.proc.send_signal(signal.SIGHUP)
                c.await_(lambda n=n: count(n, "SIGHUP: peer TLS reloaded") > before,
                         f"node {n.id} to reload ({step})")
            n0 = len(load.acked)
            c.await_(lambda: len(load.acked) >= n0 + 50, f"load to go on after {step}")

        os.replace(bundle, ca_file)
        sighup_all("both CAs")
        for n in c.nodes.values():
            certs("node", pki2, CLUSTER, n.id)
            for ext in ("pem", "key"):
                os.replace(f"{pki2}/node-{n.id}.{ext}", f"{c.pki}/node-{n.id}.{ext}.new")
            # Key first, then certificate: a reload in between would fail and keep the old.
            os.replace(f"{c.pki}/node-{n.id}.key.new", f"{c.pki}/node-{n.id}.key")
            os.replace(f"{c.pki}/node-{n.id}.pem.new", f"{c.pki}/node-{n.id}.pem")
        sighup_all("new certificates")
        with open(ca_file + ".new", "w") as out:
            out.write(open(f"{pki2}/ca.pem").read())
        os.replace(ca_file + ".new", ca_file)
        sighup_all("only the new CA")
        for n in c.nodes.values():
            check(count(n, "connection lost") == lost_before[n.id],
                  f"node {n.id}: no link dropped by the reloads")
            check(f"peer TLS reloaded: /CN=raftd {CLUSTER} node {n.id}" in n.log(),
                  f"node {n.id} names its new certificate")
        # A broken file is refused and the material in use stays.
        key = f"{c.pki}/node-1.key"
        good_key = open(key).read()
        with open(key, "w") as out:
            out.write("not a key\n")
        n1 = c.nodes[1]
        n1.proc.send_signal(signal.SIGHUP)
        c.await_(lambda: "SIGHUP: peer TLS not reloaded" in n1.log(), "node 1 to refuse the file")
        with open(key, "w") as out:
            out.write(good_key)
        # New links use the new material: a restarted follower, which only has the new CA
        # and the new certificate, is accepted by the others and catches up under load.
        lead = c.leader()
        f = next(n for n in c.nodes.values() if n is not lead)
        f.kill(signal.SIGKILL)
        f.start()
        n0 = len(load.acked)
        c.await_(lambda: len(load.acked) >= n0 + 100, "load to go on after the restart")
        acked_load = load.stop()
        check(acked_load, f"load committed entries (errors: {load.errors[-3:]})")
        for n in c.nodes.values():
            await_commit(c, n, max(acked_load))
            assert_has(c, n, acked_load)


def peer_dial(node, pki, name, announce, to=1, cluster=CLUSTER):
    """Dials node's peer port with TLS and certificate `name`, announcing node `announce`.
    Returns the welcome map, or None when the connection failed or closed first."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the node's side is what is tested here
    if name:
        ctx.load_cert_chain(f"{pki}/{name}.pem", f"{pki}/{name}.key")
    raw = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        s = ctx.wrap_socket(raw)
        hello = msgpack.packb({"raftd_peer": 1, "cluster": cluster, "from": announce, "to": to,
                               "addr": "127.0.0.1:1"})
        s.sendall(struct.pack(">I", len(hello)) + hello)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(4096)
            if not chunk:
                return None
            buf += chunk
        return msgpack.unpackb(buf[4:], raw=False)
    except (ssl.SSLError, OSError):
        return None
    finally:
        raw.close()


def tls_refusals():
    """Every bad certificate is refused with one warn line; plaintext and other-CA nodes
    cannot join; the cluster goes on."""
    with tls_cluster(crl=True) as c:
        c.start()
        c.leader()
        n1 = c.nodes[1]
        pki = c.pki
        # A well-formed dialler with a good certificate is accepted (the test's baseline).
        certs("node", pki, CLUSTER, 9, 365, "spare")
        w = peer_dial(n1, pki, "spare", 9)
        check(w and w["ok"], f"a good certificate is accepted: {w}")

        other = os.path.join(c.root, "other")
        certs("ca", other)
        certs("node", other, CLUSTER, 9, 365, "alien")
        certs("node", pki, CLUSTER, 9, 1, "expired", faketime="-3d")
        certs("node", pki, CLUSTER, 9, 30, "future", faketime="+3d")
        certs("node", pki, CLUSTER, 9, 365, "revoked")
        certs("revoke", pki, "revoked")
        before = count(n1, "SIGHUP: peer TLS reloaded")
        n1.proc.send_signal(signal.SIGHUP)  # the new CRL
        c.await_(lambda: count(n1, "SIGHUP: peer TLS reloaded") > before, "node 1 to reload")

        cases = [
            (other, "alien", 9, "is not issued by peer_tls_ca"),
            (pki, "expired", 9, "has expired (not after "),
            (pki, "future", 9, "is not yet valid (not before "),
            (pki, "revoked", 9, "is revoked (peer_tls_crl)"),
            # Node 2's valid certificate cannot speak for node 3.
            (pki, "node-2", 3, f"names raftd://{CLUSTER}/node/2, not node 3 of cluster "),
        ]
        for d, name, announce, reason in cases:
            lines_before = [l for l in n1.log().splitlines() if "[warning]" in l]
            w = peer_dial(n1, d, name, announce)
            check(not (w and w["ok"]), f"{name}: refused, got {w}")
            c.await_(lambda reason=reason: reason in n1.log(), f"node 1 to refuse {name}")
            new = [l for l in n1.log().splitlines() if "[warning]" in l][len(lines_before):]
            check(len(new) == 1 and "peer connection from 127.0.0.1:" in new[0] and
                  " refused: " in new[0] and reason in new[0],
                  f"{name}: one warn line naming why, got {new}")
        # The dialler's side verifies the acceptor too: a node of another CA refuses ours.
        # A plaintext node 4 and a node 5 of another CA try to join; both are refused and
        # never become members, so they cannot vote.
        members = {n.id: n for n in c.nodes.values()}
        plain = c.add_node(4)
        alien = c.add_node(5)
        certs("node", other, CLUSTER, 5)
        alien.extra = tls_args(other, "node-5")
        saved = c.initial
        c.initial = []
        for n in (plain, alien):
            n.extra += ["--join", "--initial-cluster", f"1={n1.addr},{n.id}={n.addr}"]
            n.start()
        c.initial = saved
        # The cluster dials them once asked to add them: an operator's mistake.
        for n in (plain, alien):
            cl = c.leader(among=list(members.values())).client()
            try:
                cl.call("add_member", node=n.id, addr=n.addr, learner=True)
            finally:
                cl.close()
        c.await_(lambda: "not a TLS handshake (the peer runs without peer_tls_*?)" in n1.log()
                 or any("connection closed during the TLS handshake" in m.log()
                        for m in members.values()),
                 "the plaintext node to be refused")
        c.await_(lambda: any(f"TLS certificate of {alien.addr} refused: certificate "
                             in m.log() for m in members.values()),
                 "a member to refuse the other CA's node")
        c.await_(lambda: "closed: TLS handshake: the peer refused us: tlsv1 alert unknown ca"
                 in alien.log(), "the other CA's node to see its certificate refused")
        for n in (plain, alien):
            st = n.try_status()
            check(st["last_index"] == 0 and st["commit"] == 0,
                  f"node {n.id} received no entry: {st}")
        # The cluster goes on with its three voters.
        leader = c.leader(among=list(members.values()))
        acked = propose_many(c, leader, 10, "still")
        for n in members.values():
            assert_has(c, n, acked)
        st = leader.try_status()
        voters = sorted(m["node"] for m in st["members"] if m["voter"])
        check(voters == [1, 2, 3], f"three voters: {st['members']}")


def tls_mismatch_startup():
    """Half the TLS options, or a certificate for another node, stop raftd at start."""
    with tls_cluster(1) as c:
        n = c.nodes[1]
        c.initial = []
        certs("node", c.pki, CLUSTER, 2)

        def fails(extra, needle):
            n.extra = extra
            p = subprocess.run(n.args(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30, stdin=subprocess.DEVNULL)
            check(p.returncode != 0 and needle in p.stdout, f"{needle!r} in {p.stdout[-500:]}")

        fails(["--peer-tls-cert", f"{c.pki}/node-1.pem"], "set all three")
        fails(tls_args(c.pki, "node-2"), f"needs the SAN URI raftd://{CLUSTER}/node/1")


SCENARIOS = {f.__name__: f for f in (tls_cluster_ops, tls_refusals, tls_mismatch_startup)}


if __name__ == "__main__":
    sys.exit(run_scenarios(SCENARIOS, sys.argv))
