"""Tests of the Python client against a server given by $RAFTD_TEST_SOCKET (fake_raftd:
the real ipc server over an in-memory backend). Run by tests/scripts/python_client_fake.sh.

Faults the fake never makes (a lost reply, INDETERMINATE, EXPIRED, a dropped connection)
come from FaultProxy, a frame-level proxy in front of it that follows a per-proposal plan."""
import asyncio
import collections
import concurrent.futures
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import socket  # noqa: E402

from raftd_client import Client, ConnectionLost, RaftdError  # noqa: E402
from raftd_client import decode_body, encode_request, read_frame, split_frame  # noqa: E402
from raftd_client import DeadlineExceeded, Session, encode_frame  # noqa: E402
from raftd_client.aio import AsyncClient  # noqa: E402
from raftd_client import Event  # noqa: E402
from raftd_client.apply import ApplyLoop, StreamError  # noqa: E402

SOCK = os.environ["RAFTD_TEST_SOCKET"]


def expect_error(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except RaftdError as e:
        assert e.code == code, f"{fn.__name__}: got {e.code}, want {code}"
        return e
    raise AssertionError(f"{fn.__name__}: no error, want {code}")


def test_every_op():
    with Client(SOCK) as c:
        assert c.server["node_id"] == 1 and c.server["max_entry"] == 1 << 20
        c.ping()
        p = c.propose(b"one")
        assert (p.index, p.term) == (1, 3), p
        assert c.read_index() == 1
        st = c.status()
        assert st["role"] == "leader" and st["commit"] == 1 and len(st["members"]) == 3, st
        assert [m["node"] for m in c.members()["members"]] == [1, 2, 3]
        m = c.add_member(4, "127.0.0.1:7004", learner=True)
        assert m["members"][-1] == {"node": 4, "addr": "127.0.0.1:7004", "voter": False}, m
        assert c.promote(4)["members"][-1]["voter"] is True
        assert c.demote(4)["members"][-1]["voter"] is False
        assert len(c.remove_member(4)["members"]) == 3
        expect_error("NOT_FOUND", c.remove_member, 4)
        expect_error("BAD_REQUEST", c.add_member, 2, "x:1")
        assert c.transfer_leader(2) == 2
        assert c.campaign() == 4
        idx = c.read_index()
        blob = os.urandom(250_000)
        assert c.snapshot(idx, blob, chunk=100_000) == idx
        expect_error("BAD_REQUEST", c.snapshot, idx + 1000, b"x")
        expect_error("TOO_LARGE", c.propose, b"x" * ((1 << 20) + 1))
        expect_error("UNKNOWN_OP", c.call, "frobnicate")
        expect_error("BAD_REQUEST", c.call, "propose", data="not bytes")
        c.ping()  # still usable
        return idx, blob


def test_pipelined_order():
    with Client(SOCK) as c:
        ids = [c.propose_async(b"p%d" % i) for i in range(200)]
        idx = [c.result(r)["index"] for r in ids]
        assert idx == list(range(idx[0], idx[0] + 200)), idx[:5]


def test_stream(snap_index, blob):
    with Client(SOCK) as c:
        sub = c.subscribe(from_=1, timeout=5)
        got = bytearray()
        ev = next(sub)
        assert ev.kind == "snapshot" and ev.offset == 0, ev
        got += ev.data
        while not ev.done:
            ev = next(sub)
            assert ev.kind == "snapshot" and ev.offset == len(got)
            got += ev.data
        assert bytes(got) == blob and ev.index == snap_index
        expect = snap_index + 1
        status = c.status()
        while expect <= status["commit"]:
            ev = next(sub)
            assert ev.kind == "entry" and ev.index == expect, (ev.index, expect)
            expect += 1
        # Our own new proposal shows up next.
        p = c.propose(b"tail")
        ev = next(sub)
        assert (ev.index, ev.data, ev.type) == (p.index, b"tail", "data")
        assert sub.next(timeout=0.1) is None
        sub.close()
        expect_error("NOT_FOUND", c.call, "unsubscribe", sub=sub.id)


def test_dropped_client_is_collected():
    """A Client dropped without close() is collected: its reader thread ends and its
    socket closes (the reader thread must not keep it alive)."""
    import gc
    before = threading.active_count()
    for _ in range(20):
        Client(SOCK).ping()
    gc.collect()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before, threading.enumerate()


def test_connection_errors():
    try:
        Client(SOCK + ".missing")
    except ConnectionLost as e:
        assert e.code == "CONNECTION"
    else:
        raise AssertionError("connect to a missing socket succeeded")


def test_framing():
    """The framing the test harnesses share: the documented bytes, splitting, bad lengths,
    and read_frame stopping at a frame's end (a stalled reader relies on it)."""
    ping = encode_request("ping", 1)
    assert ping == bytes.fromhex("0000000d82a26f70a470696e67a2696401"), ping.hex()
    buf = bytearray(ping + ping[:5])
    assert decode_body(split_frame(buf)) == {"op": "ping", "id": 1}
    assert split_frame(buf) is None and len(buf) == 5
    for bad in (b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"):
        try:
            split_frame(bytearray(bad))
        except ValueError:
            pass
        else:
            raise AssertionError(f"length {bad.hex()} accepted")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(SOCK)
        s.sendall(encode_request("ping", 7) + encode_request("ping", 8))
        first = read_frame(s)
        assert decode_body(first) == {"id": 7, "ok": True}, first
        s.settimeout(10)
        rest = s.recv(1 << 16)  # the second reply is still unread, whole
        assert decode_body(rest[4:]) == {"id": 8, "ok": True}, rest


class FaultProxy:
    """Forwards frames between clients and the fake. For each `propose` it takes the next
    step of `plan` (default "ok"): "ok" forwards; "unavailable"/"expired"/"bad_request"
    answer that error
    without forwarding; "indeterminate" forwards and answers INDETERMINATE instead of the
    reply; "drop" forwards and swallows the reply; "close" forwards, then closes the
    client's connection before the reply. `proposals` records each propose's map."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.plan = collections.deque()
        self.proposals = []
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "proxy.sock")
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.upstream)
            state = {"swallow": set(), "replace": {}}
            threading.Thread(target=self._up, args=(c, u, state), daemon=True).start()
            threading.Thread(target=self._down, args=(c, u, state), daemon=True).start()

    def _up(self, c, u, state):
        try:
            while True:
                body = read_frame(c)
                if body is None:
                    break
                m = decode_body(body)
                step = "ok"
                if m.get("op") == "propose":
                    self.proposals.append(m)
                    step = self.plan.popleft() if self.plan else "ok"
                if step in ("unavailable", "expired", "bad_request"):
                    c.sendall(encode_frame({"id": m["id"], "ok": False, "error": {
                        "code": step.upper(), "message": "injected"}}))
                    continue
                if step in ("drop", "close"):
                    state["swallow"].add(m["id"])
                elif step == "indeterminate":
                    state["replace"][m["id"]] = "INDETERMINATE"
                u.sendall(len(body).to_bytes(4, "big") + body)
                if step == "close":
                    c.shutdown(socket.SHUT_RDWR)
                    break
        except OSError:
            pass
        finally:
            u.close()

    def _down(self, c, u, state):
        try:
            while True:
                body = read_frame(u)
                if body is None:
                    break
                m = decode_body(body)
                if m.get("id") in state["swallow"]:
                    continue
                code = state["replace"].pop(m.get("id"), None)
                if code:
                    body = encode_frame({"id": m["id"], "ok": False, "error": {
                        "code": code, "message": "injected"}})[4:]
                c.sendall(len(body).to_bytes(4, "big") + body)
        except OSError:
            pass
        finally:
            c.close()


def test_futures_and_threads():
    """Futures from propose_async/propose_many, and many threads on one connection."""
    with Client(SOCK) as c:
        f = c.propose_async(b"future")
        assert isinstance(f, concurrent.futures.Future)
        p = f.result(10)
        assert p.index >= 1 and c.result(f)["index"] == p.index  # the old API on a future
        many = c.propose_many([b"m%d" % i for i in range(300)])
        idx = [x.result(10).index for x in many]
        assert idx == list(range(idx[0], idx[0] + 300)), idx[:3]
        done = [x for x in concurrent.futures.as_completed(c.propose_many([b"a", b"b"]), 10)]
        assert len(done) == 2
        results, errors = {}, []

        def worker(t):
            try:
                results[t] = [c.propose(b"t%d-%d" % (t, i)).index for i in range(200)]
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        all_idx = [i for r in results.values() for i in r]
        assert len(set(all_idx)) == 1600, "every proposal its own index"
        for r in results.values():
            assert r == sorted(r), "one thread's proposals commit in its order"


def test_text_and_too_large():
    """str is proposed as UTF-8; what the server would refuse fails here, before sending,
    and the connection stays usable (no broken pipe)."""
    with Client(SOCK) as c:
        p = c.propose("grüße")
        sub = c.subscribe(from_=p.index, timeout=5)
        assert next(sub).data == "grüße".encode()
        sub.close()
        try:
            c.propose(12345)
        except TypeError as e:
            assert "bytes" in str(e)
        else:
            raise AssertionError("propose(int) accepted")
        e = expect_error("TOO_LARGE", c.propose, b"x" * (c.max_entry + 1))
        assert e.local, "refused by the client"
        e = expect_error("TOO_LARGE", c.call, "ping", pad=b"x" * c.max_frame)
        assert e.local
        c.ping()
        assert c.propose(b"y" * c.max_entry).index > 0, "exactly max_entry is fine"


def test_deadline_is_indeterminate():
    """A proposal whose client deadline passes was sent: INDETERMINATE, never TIMEOUT;
    the connection stays usable and the late reply is dropped."""
    px = FaultProxy(SOCK)
    with Client(px.path, timeout=0.3) as c:
        px.plan.extend(["drop"])
        e = expect_error("INDETERMINATE", c.propose, b"lost-reply")
        assert isinstance(e, DeadlineExceeded) and e.local
        px.plan.extend(["drop"])
        f = c.propose_async(b"lost-reply-2")
        assert f.exception(5).code == "INDETERMINATE"
        c.ping()
        px.plan.extend(["drop"])
        rid = c.send("propose", data=b"old-api")
        expect_error("INDETERMINATE", c.result, rid)
        assert c.propose(b"after").index > 0
    with Client(px.path, timeout=5) as c:
        # Calls share one condition: another call's completion must not end a wait early.
        px.plan.extend(["drop"])
        f = c.propose_async(b"pending")
        stop = threading.Event()

        def pinger():
            while not stop.is_set():
                c.ping()
        t = threading.Thread(target=pinger)
        t.start()
        t0 = time.monotonic()
        try:
            f.result(0.3)
        except concurrent.futures.TimeoutError:
            assert time.monotonic() - t0 >= 0.29, "woken early by another call"
        else:
            raise AssertionError("a dropped reply arrived")
        done, not_done = concurrent.futures.wait([f, c.propose_async(b"x")], timeout=5,
                                                 return_when=concurrent.futures.FIRST_COMPLETED)
        assert len(done) == 1 and f in not_done
        stop.set()
        t.join()
    with Client(px.path) as c:
        px.plan.extend(["close"])
        f = c.propose_async(b"cut")
        e = f.exception(5)
        assert e.code == "CONNECTION" and e.may_have_committed, e


def test_session_retries():
    """Session.propose_once sends one (client, seq) key until ok, through errors and a lost
    connection; EXPIRED and BAD_REQUEST are not retried; the deadline says whether an
    attempt may have committed."""
    px = FaultProxy(SOCK)
    with Session(px.path, deadline=10, attempt_timeout=0.5, backoff=0.01) as s:
        assert 1 <= s.client_id < 1 << 64
        px.plan.extend(["unavailable", "indeterminate", "close", "drop", "ok"])
        p = s.propose_once(b"job-1")
        assert p.index > 0 and s.attempts == 5, (p, s.attempts)
        keys = {(m["client"], m["seq"], m["data"]) for m in px.proposals}
        assert keys == {(s.client_id, 1, b"job-1")}, keys
        px.proposals.clear()
        p2 = s.propose_once(b"job-2")
        assert [(m["client"], m["seq"]) for m in px.proposals] == [(s.client_id, 2)]
        assert p2.index > p.index
        px.plan.extend(["expired"])
        expect_error("EXPIRED", s.propose_once, b"job-3")
        px.plan.extend(["bad_request"])
        n = s.attempts
        expect_error("BAD_REQUEST", s.propose_once, b"job-4")
        assert s.attempts == n + 1, "not retried"
    with Session(px.path, deadline=0.4, backoff=0.01) as s:
        px.plan.extend(["unavailable"] * 1000)
        expect_error("UNAVAILABLE", s.propose_once, b"never")  # definitely not committed
        px.plan.clear()
        px.plan.extend(["indeterminate"] + ["unavailable"] * 1000)
        e = expect_error("INDETERMINATE", s.propose_once, b"maybe")
        assert "may have committed" in e.message, e
        px.plan.clear()


def test_asyncio():
    async def run():
        async with await AsyncClient.connect(SOCK) as c:
            assert c.server["max_entry"] == 1 << 20
            ps = await asyncio.gather(*(c.propose(b"aio-%d" % i) for i in range(500)))
            idx = [p.index for p in ps]
            assert idx == list(range(idx[0], idx[0] + 500)), "one write, in order"
            try:
                await c.propose(b"x" * (c.max_entry + 1))
            except RaftdError as e:
                assert e.code == "TOO_LARGE" and e.local
            sub = await c.subscribe(idx[-1])
            ev = await sub.__anext__()
            assert (ev.index, ev.data) == (idx[-1], b"aio-499")
            await sub.close()
            assert (await c.read_index()) >= idx[-1]
        px = FaultProxy(SOCK)
        async with await AsyncClient.connect(px.path, timeout=0.3) as c:
            px.plan.extend(["drop"])
            try:
                await c.propose("lost")
            except RaftdError as e:
                assert e.code == "INDETERMINATE" and isinstance(e, DeadlineExceeded), e
            else:
                raise AssertionError("no deadline")
            await c.ping()
    asyncio.run(run())


class ScriptedStream:
    """A subscription that replays a list of events, for the apply loop's stream logic."""

    def __init__(self, events):
        self.events = collections.deque(events)

    def next(self, timeout=None):
        if not self.events:
            raise ConnectionLost("end of script")
        return self.events.popleft()


def snap(index, offset, data, done):
    return Event(kind="snapshot", sub=1, index=index, offset=offset, data=data, done=done)


def entry(index, data=b"", type_="data"):
    return Event(kind="entry", sub=1, index=index, type=type_, data=data)


def test_apply_loop_stream_rules():
    """docs/protocol.md 6.3 as the apply loop reads it: a chunk at offset 0 discards a
    partial snapshot, entries continue at the snapshot's index + 1 and must be contiguous,
    noop/config entries advance the index without apply(), a chunk out of order is refused,
    and an exception from apply() stops the loop for wait_applied() to raise."""
    applied, restored = [], []
    loop = ApplyLoop(None, lambda ev: applied.append(ev.data), lambda: b"",
                     lambda blob: restored.append(blob))
    try:
        loop._consume(ScriptedStream([
            snap(5, 0, b"old-", False), snap(5, 4, b"part", False),
            snap(7, 0, b"new-", False), snap(7, 4, b"whole", True),      # started over
            entry(8, b"a"), entry(9, type_="noop"), entry(10, b"b")]))
    except ConnectionLost:
        pass
    assert restored == [b"new-whole"] and loop.restored_from == 7, restored
    assert applied == [b"a", b"b"] and loop.applied == 10, (applied, loop.applied)
    for bad in ([entry(12, b"gap")], [snap(20, 3, b"x", False)],
                [snap(20, 0, b"x", False), entry(11, b"inside")]):
        try:
            loop._consume(ScriptedStream(bad))
        except StreamError:
            pass
        else:
            raise AssertionError(f"accepted {bad}")
    assert loop.applied == 10, "nothing applied from a broken stream"

    def boom(ev):
        raise KeyError("apply failed")
    with Client(SOCK) as c:
        p = c.propose(b"before")
    failing = ApplyLoop(SOCK, boom, restore=lambda blob: None).start()
    try:
        failing.wait_applied(p.index, timeout=10)
    except KeyError:
        pass
    else:
        raise AssertionError("wait_applied did not raise apply's error")
    finally:
        failing.stop()
    # The fake's log starts with a snapshot (test_every_op): without restore() the loop
    # cannot follow it, and says so instead of resubscribing forever.
    blind = ApplyLoop(SOCK, lambda ev: None).start()
    try:
        blind.wait_applied(1, timeout=10)
    except RuntimeError as e:
        assert "no restore()" in str(e), e
    else:
        raise AssertionError("a loop without restore() followed a snapshot")
    finally:
        blind.stop()


if __name__ == "__main__":
    test_framing()
    idx, blob = test_every_op()
    test_pipelined_order()
    test_stream(idx, blob)
    test_connection_errors()
    test_dropped_client_is_collected()
    test_futures_and_threads()
    test_text_and_too_large()
    test_deadline_is_indeterminate()
    test_session_retries()
    test_asyncio()
    test_apply_loop_stream_rules()
    print("python client: ok")
