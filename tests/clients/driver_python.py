"""The Python client's driver of the conformance scenarios (scenarios.txt); see
conformance.py for the protocol between harness and driver.

    driver_python.py --scenario NAME --nodes 1=SOCK,... --leader ID --spare ID
    driver_python.py --bench SOCK [--seconds S]

Python's Client is used by one thread at a time: concurrent workers each get their own
connection, and pipeline on it with propose_async/result.
"""
import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from raftd_client import Client, RaftdError  # noqa: E402
from clients_test import stream as _stream  # noqa: E402

NODES = {}
LEADER = 0
SPARE = 0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def client(nid, timeout=30.0):
    return Client(NODES[nid], timeout=timeout, name="conformance-python")


def followers():
    return sorted(n for n in NODES if n != LEADER)


def ask(req):
    print(req, flush=True)
    line = sys.stdin.readline()
    check(line.startswith("ok"), f"harness refused {req}: {line!r}")
    return line[2:].strip()


class _Node:  # what tests/integration/clients_test.py's stream() needs of a node
    def __init__(self, nid):
        self.id, self.socket = nid, NODES[nid]


def stream(nid, from_, upto):
    """[(index, term, type, data)] from `from_` through `upto`, contiguous; a leading
    snapshot is ("snapshot", index, bytes). The integration tests' own reader."""
    return _stream(_Node(nid), upto, from_=from_, timeout=30)


def payloads(s):
    m = {}
    for e in s:
        if e[0] != "snapshot" and e[2] == "data":
            m.setdefault(e[3], []).append(e[0])
    return m


def read_index(nid):
    with client(nid) as c:
        return c.read_index()


def ping():
    nid = followers()[0]
    with client(nid) as c:
        check(c.server["node_id"] == nid and c.server["cluster"] and c.server["version"] == 1,
              f"hello {c.server}")
        c.ping()


def propose_concurrent():
    nid = followers()[0]
    acked, errors = {}, []

    def worker(w):
        try:
            with client(nid) as c:
                rids = [c.propose_async(b"py-w%d-%d" % (w, i)) for i in range(50)]
                acked[w] = [c.result(r)["index"] for r in rids]
        except Exception as e:  # reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, errors)
    all_ix = [ix for v in acked.values() for ix in v]
    check(len(set(all_ix)) == len(all_ix), "an index acknowledged twice")
    got = payloads(stream(nid, 1, max(all_ix)))
    for w, idx in acked.items():
        for i, ix in enumerate(idx):
            p = b"py-w%d-%d" % (w, i)
            check(got.get(p) == [ix], f"{p!r} acked at {ix}, stream has {got.get(p)}")


def per_connection_order():
    with client(LEADER) as c:
        rids = [c.propose_async(b"py-order-%d" % i) for i in range(200)]
        res = [c.result(r)["index"] for r in rids]
    for i in range(1, 200):
        check(res[i] > res[i - 1], f"acknowledged {i} at {res[i]}, not after {res[i - 1]}")
    got = payloads(stream(LEADER, res[0], res[-1]))
    for i, ix in enumerate(res):
        check(got.get(b"py-order-%d" % i) == [ix], f"py-order-{i}: {got.get(b'py-order-%d' % i)}")


def subscribe_from_1():
    nid = followers()[1]
    s = stream(nid, 1, read_index(nid))
    check(s, "empty stream")
    if s[0][0] == "snapshot":
        check(len(s) == 1 or s[1][0] == s[0][1] + 1, "entries continue after the snapshot")
    else:
        check(s[0][0] == 1, f"starts at {s[0][0]}")


def subscribe_from_middle():
    with client(LEADER) as c:
        idx = [c.propose(b"py-mid-%d" % i).index for i in range(20)]
    s = stream(followers()[0], idx[9], idx[19])
    check(s[0][0] == idx[9] and s[0][3] == b"py-mid-9", f"first event {s[0]!r:.80}")
    got = payloads(s)
    for i in range(9, 20):
        check(got.get(b"py-mid-%d" % i) == [idx[i]], f"py-mid-{i}")


def subscribe_after_compaction():
    with client(LEADER) as c:
        rids = [c.propose_async(b"py-big-%d-" % i + b"x" * 65536) for i in range(40)]
        for r in rids:
            c.result(r)
        ix = c.read_index()
        stream(LEADER, ix, ix)
        state = b"py-state-through-%d" % ix
        check(c.snapshot(ix, state, chunk=7) == ix, "snapshot index")
        st = c.status()
        check(st["first_index"] > 1 and st["snapshot_index"] == ix, f"log compacted: {st}")
        last = [c.propose(b"py-after-%d" % i).index for i in range(3)][-1]
    s = stream(LEADER, 1, last)
    check(s[0] == ("snapshot", ix, state), f"stream starts with the snapshot: {s[0]!r:.80}")
    check([e[0] for e in s[1:]] == list(range(ix + 1, last + 1)), "then the entries")


def read_index_follower():
    with client(LEADER) as c:
        ix = c.propose(b"py-ri").index
    f = followers()[0]
    ri = read_index(f)
    check(ri >= ix, f"read_index {ri} < committed {ix}")
    check(payloads(stream(f, ix, ri)).get(b"py-ri") == [ix], "the follower's stream has it")


def membership():
    with client(followers()[0], timeout=60) as c:
        def voter(m):
            v = [x["voter"] for x in m["members"] if x["node"] == SPARE]
            return v[0] if v else None
        check(voter(c.add_member(SPARE, "127.0.0.1:1", learner=True)) is False, "added a learner")
        check(voter(c.promote(SPARE)) is True, "promoted")
        check(voter(c.demote(SPARE)) is False, "demoted")
        check(voter(c.remove_member(SPARE)) is None, "removed")
        m = c.change_members(add=[{"node": SPARE, "addr": "127.0.0.1:1", "learner": True}])
        check(voter(m) is False and not m["joint"], f"change_members added {m}")
        check(voter(c.change_members(remove=[SPARE])) is None, "change_members removed")
        check(len(c.members()["members"]) == 3, "three members again")
        try:
            c.remove_member(99)
            raise Failure("removing an unknown node succeeded")
        except RaftdError as e:
            check(e.code in ("BAD_REQUEST", "NOT_FOUND"), e.code)


def transfer():
    f = followers()[0]
    with client(f) as c:
        check(c.transfer_leader(f) == f, "transfer answered the target")
        check(c.status()["role"] == "leader", "it leads")


def campaign():
    f = followers()[0]
    with client(f) as c:
        term = c.status()["term"]
        check(c.campaign() >= term, "campaign term")
        deadline = time.monotonic() + 20
        while c.status()["leader"] == 0:
            check(time.monotonic() < deadline, "no leader after the campaign")
            time.sleep(0.02)


def bad_input():
    with client(LEADER) as c:
        try:
            c.propose(b"x" * (c.server["max_entry"] + 1))
            raise Failure("an oversized proposal was accepted")
        except RaftdError as e:
            check(e.code == "TOO_LARGE", e.code)
        c.ping()
        try:
            c.call("unsubscribe", sub=987654)
            raise Failure("unsubscribe of an unknown id succeeded")
        except RaftdError as e:
            check(e.code == "NOT_FOUND", e.code)
        commit = c.status()["commit"]
        try:
            c.snapshot(commit + 1000, b"s")
            raise Failure("a snapshot above the commit index was accepted")
        except RaftdError as e:
            check(e.code == "BAD_REQUEST", e.code)
        try:
            c.call("frobnicate")
            raise Failure("an unknown op succeeded")
        except RaftdError as e:
            check(e.code == "UNKNOWN_OP", e.code)
        c.ping()


def deadline():
    fs = followers()
    with client(LEADER) as c:
        ask(f"@pause {fs[0]},{fs[1]}")
        t0 = time.monotonic()
        err = None
        try:
            c.result(c.propose_async(b"py-deadline"), timeout=0.1)
        except RaftdError as e:
            err = e
        took = time.monotonic() - t0
        ask("@resume")
        check(err is not None, "the proposal committed with both followers paused")
        check(took < 2, f"answered after {took:.2f}s")
        check(err.code in ("INDETERMINATE", "TIMEOUT"), f"error claims more than it knows: {err}")
        c.propose(b"py-after-deadline")


def kill_leader():
    global LEADER
    nid = followers()[0]
    acked, unknown = {}, [0]
    stop = threading.Event()
    errors = []

    def proposer():
        i = 0
        try:
            with client(nid, timeout=15) as c:
                while not stop.is_set():
                    batch = [b"py-k-%d" % (i + j) for j in range(20)]
                    i += 20
                    rids = [(c.propose_async(d), d) for d in batch]
                    for rid, d in rids:
                        try:
                            acked[d] = c.result(rid)["index"]
                        except RaftdError as e:
                            if e.code != "UNAVAILABLE":
                                unknown[0] += 1
                            else:
                                time.sleep(0.01)
        except Exception as e:
            errors.append(repr(e))

    t = threading.Thread(target=proposer)
    t.start()

    def wait_for(n, what):
        deadline = time.monotonic() + 30
        while len(acked) < n:
            check(time.monotonic() < deadline and not errors, f"waiting for {what}: {errors}")
            time.sleep(0.01)

    try:
        wait_for(100, "100 acknowledged")
        new = int(ask("@kill-leader"))
        del NODES[LEADER]
        LEADER = new
        wait_for(len(acked) + 100, "100 more after the kill")
    finally:
        stop.set()
        t.join()
    check(not errors, errors)
    top = read_index(LEADER)
    for n in NODES:
        got = payloads(stream(n, 1, top))
        for d, ix in acked.items():
            check(len(got.get(d, [])) == 1, f"node {n}: {d!r} (acked at {ix}) seen {got.get(d)}")
        dup = [d for d, at in got.items() if len(at) > 1]
        check(not dup, f"node {n}: duplicated {dup[:3]}")
    print(f"acknowledged {len(acked)}, indeterminate {unknown[0]}", file=sys.stderr)


SCENARIOS = {f.__name__: f for f in (
    ping, propose_concurrent, per_connection_order, subscribe_from_1, subscribe_from_middle,
    subscribe_after_compaction, read_index_follower, membership, transfer, campaign, bad_input,
    deadline, kill_leader)}


def bench(sock, seconds):
    """64 proposals of 256 B in flight on one connection (propose_async/result)."""
    data = b"b" * 256
    with Client(sock, name="bench-python") as c:
        window = [c.propose_async(data) for _ in range(64)]
        n, failed, start, measuring = 0, 0, None, False
        t_warm = time.monotonic() + 1
        while True:
            now = time.monotonic()
            if not measuring and now >= t_warm:
                measuring, start, n, failed = True, now, 0, 0
            if measuring and now - start >= seconds:
                break
            rid = window.pop(0)
            try:
                c.result(rid)
                n += 1
            except RaftdError:
                failed += 1
            window.append(c.propose_async(data))
        el = time.monotonic() - start
        for rid in window:
            try:
                c.result(rid)
            except RaftdError:
                pass
    print(json.dumps({"client": "python", "proposals_per_s": round(n / el), "failed": failed}))


def main():
    global LEADER, SPARE
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="")
    ap.add_argument("--nodes", default="")
    ap.add_argument("--leader", type=int, default=0)
    ap.add_argument("--spare", type=int, default=0)
    ap.add_argument("--bench", default="")
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    if a.bench:
        bench(a.bench, a.seconds)
        return 0
    for kv in a.nodes.split(","):
        if "=" in kv:
            k, v = kv.split("=", 1)
            NODES[int(k)] = v
    LEADER, SPARE = a.leader, a.spare
    fn = SCENARIOS.get(a.scenario)
    if fn is None:
        print(f"result: fail: the Python driver has no scenario {a.scenario!r}")
        return 1
    try:
        fn()
    except (Failure, RaftdError, AssertionError, TimeoutError, OSError) as e:
        print(f"result: fail: {type(e).__name__}: {e}", flush=True)
        return 1
    print("result: pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
