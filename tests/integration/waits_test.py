"""Requests that wait instead of failing, against real raftd processes (run by
tests/scripts/cluster_*.sh): waiting out an election (docs/protocol.md 6.7), subscribing to a
future index (6.3) and lease reads (6.5).

    /usr/bin/python3 tests/integration/waits_test.py SCENARIO...

Each scenario starts its own cluster on free loopback ports and kills every process when it
ends (logs are printed on failure). Conditions are awaited with deadlines.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftd_cluster import Cluster, ProtocolError, run_scenarios  # noqa: E402

RAFTCTL = os.path.abspath(os.path.join(os.environ.get("RAFTD_BUILD", "build/release"), "bin",
                                       "raftctl"))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def reply(cl, rid):
    """The reply to `rid` as a dict, errors included (no exception)."""
    try:
        return cl.wait_reply(rid)
    except ProtocolError as e:
        return {"ok": False, "code": e.code, "error": e.error}


def no_leader(node):
    st = node.try_status()
    return st is not None and st["leader"] == 0


# ---- scenarios ------------------------------------------------------------------------------

def election_wait():
    """A proposal sent right after `campaign` on a follower waits out the election."""
    with Cluster(3) as c:
        c.start()
        leader = c.leader()
        f = next(n for n in c.nodes.values() if n is not leader)
        cl = f.client()
        try:
            for i in range(5):
                # Pipelined: the proposal arrives while the follower knows no leader.
                camp = cl.send("campaign")
                props = [cl.send("propose", data=f"after campaign {i}-{k}".encode())
                         for k in range(3)]
                check(reply(cl, camp).get("ok"), f"campaign {i} is accepted")
                idx = []
                for rid in props:
                    r = reply(cl, rid)
                    check(r.get("ok"), f"round {i}: the proposal waits for the election: {r}")
                    idx.append(r["index"])
                check(idx == sorted(idx), f"round {i}: connection order kept: {idx}")
        finally:
            cl.close()
        # Opening and closing client connections is not news at info (docs/operations.md 10).
        for n in c.nodes.values():
            check("connected, pid" not in n.log(),
                  f"node {n.id} logs client connections at info")


def no_quorum():
    """Without a quorum no leader comes: UNAVAILABLE after timeout_ms, BUSY beyond the
    queue's limit, and nothing appended."""
    with Cluster(3, extra=["--leader-wait-requests", "2"]) as c:
        c.start()
        c.leader()
        n1 = c.nodes[1]
        for n in c.nodes.values():
            if n is not n1:
                n.kill(signal.SIGKILL)
        c.await_(lambda: no_leader(n1), "node 1 to know no leader")
        before = n1.try_status()["last_index"]
        cl = n1.client()
        try:
            t0 = time.monotonic()
            a = cl.send("propose", data=b"a", timeout_ms=700)
            b = cl.send("propose", data=b"b", timeout_ms=700)
            busy = cl.send("propose", data=b"c", timeout_ms=700)
            r = reply(cl, busy)
            check(r.get("code") == "BUSY", f"a third waiting request is BUSY: {r}")
            check(time.monotonic() - t0 < 0.5, "BUSY comes at once")
            for rid in (a, b):
                r = reply(cl, rid)
                check(r.get("code") == "UNAVAILABLE", f"no leader: UNAVAILABLE: {r}")
            waited = time.monotonic() - t0
            check(0.65 <= waited < 5.0, f"UNAVAILABLE after about timeout_ms, not {waited:.2f}s")
            r = reply(cl, cl.send("read_index", timeout_ms=0))
            check(r.get("code") == "UNAVAILABLE", f"timeout_ms 0 does not wait: {r}")
        finally:
            cl.close()
        check(n1.try_status()["last_index"] == before, "nothing was appended")
        # The others come back: a proposal waiting with the default timeout goes through.
        cl = n1.client()
        try:
            rid = cl.send("propose", data=b"after", timeout_ms=20000)
            for n in c.nodes.values():
                if n is not n1:
                    n.start(wait=False)
            r = reply(cl, rid)
            # Known limit (docs/protocol.md 6.7): once a leader is known the request is
            # forwarded at once, and while this node's link to the new leader is still being
            # redialled that fails with UNAVAILABLE (nothing appended) instead of waiting.
            deadline = time.monotonic() + 20
            while (not r.get("ok") and r.get("code") == "UNAVAILABLE" and
                   "cannot reach the leader" in r["error"]["message"] and
                   time.monotonic() < deadline):
                r = reply(cl, cl.send("propose", data=b"after", timeout_ms=20000))
            check(r.get("ok"), f"the waiting proposal commits once a leader is elected: {r}")
        finally:
            cl.close()


def subscribe_future():
    """A subscription from beyond the last index + 1 starts exactly there once it commits."""
    with Cluster(1) as c:
        c.start()
        n = c.nodes[1]
        c.await_(lambda: (n.try_status() or {}).get("role") == "leader", "node 1 to lead")
        last = n.try_status()["last_index"]
        start = last + 4
        cl = n.client()
        try:
            sub = cl.send("subscribe", **{"from": start})
            check(reply(cl, sub).get("ok"), "a future `from` is accepted")
            for i in range(6):
                check(reply(cl, cl.send("propose", data=f"e{i}".encode())).get("ok"),
                      "proposal commits")
            got = []
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                evs, cl.events = cl.events, []
                got += [e for e in evs if e.get("ev") == "entry" and e["id"] == sub]
                if len(got) < 3:
                    cl.events.append(cl.read_frame())
            check([e["index"] for e in got[:3]] == [start, start + 1, start + 2],
                  f"the stream starts at {start}: {[e['index'] for e in got]}")
            check(got[0]["data"] == b"e3", f"entry {start} is the fourth proposal")
        finally:
            cl.close()


def lease_read():
    """With lease_read, `lease: true` answers from the leader's lease without a quorum
    round while the lease holds; once it is gone the node refuses instead of answering."""
    # A long election timeout (150 ticks of 20 ms) so the lease outlives the test's steps.
    with Cluster(3, election_ticks=150, extra=["--lease-read"]) as c:
        c.start()
        leader = c.leader()
        followers = [n for n in c.nodes.values() if n is not leader]
        # Through a follower too: it forwards the choice to the leader.
        fc = followers[0].client()
        try:
            check(reply(fc, fc.send("read_index", lease=True)).get("ok"), "forwarded lease read")
        finally:
            fc.close()
        cl = leader.client()
        try:
            check(reply(cl, cl.send("propose", data=b"x")).get("ok"), "a proposal commits")
            for f in followers:
                f.proc.send_signal(signal.SIGSTOP)  # paused, not gone: Node.kill would wait
            t0 = time.monotonic()
            quorum = cl.send("read_index")
            lease = cl.send("read_index", lease=True)
            r = reply(cl, lease)
            check(r.get("ok"), f"the lease read is answered without the followers: {r}")
            check(time.monotonic() - t0 < 1.0, "at once")
            # raftctl's --lease is the same request.
            try:
                p = subprocess.run([RAFTCTL, "--socket", leader.socket, "read-index", "--lease"],
                                   capture_output=True, timeout=5)
            except subprocess.TimeoutExpired:
                raise AssertionError("raftctl read-index --lease waited for a quorum")
            check(p.returncode == 0 and p.stdout.strip().isdigit(),
                  f"raftctl read-index --lease: exit {p.returncode}, {p.stderr!r}")
            check(time.monotonic() - t0 < 1.5, "raftctl's lease read is answered at once too")
            cl.sock.settimeout(0.5)
            try:
                m = cl.read_frame()
                raise AssertionError(f"a quorum read needs the stopped followers: {m}")
            except (TimeoutError, OSError):
                pass
            # After the lease: the leader steps down (check_quorum), knows no leader, and a
            # lease read waits, then is refused rather than served from a stale lease.
            cl.sock.settimeout(20)
            c.await_(lambda: no_leader(leader), "the leader to step down")
            r = reply(cl, cl.send("read_index", lease=True, timeout_ms=300))
            check(r.get("code") == "UNAVAILABLE", f"no lease, no leader: UNAVAILABLE: {r}")
            del quorum  # answered TIMEOUT much later; not waited for
        finally:
            for f in followers:
                if f.running():
                    f.proc.send_signal(signal.SIGCONT)
            cl.close()


SCENARIOS = {f.__name__: f for f in (election_wait, no_quorum, subscribe_future, lease_read)}


if __name__ == "__main__":
    sys.exit(run_scenarios(SCENARIOS, sys.argv))
