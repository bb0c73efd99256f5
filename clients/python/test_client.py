"""Tests of the Python client against a server given by $RAFTD_TEST_SOCKET (fake_raftd:
the real ipc server over an in-memory backend). Run by tests/scripts/python_client_fake.sh."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import socket  # noqa: E402

from raftd_client import Client, ConnectionLost, RaftdError  # noqa: E402
from raftd_client import decode_body, encode_request, read_frame, split_frame  # noqa: E402

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


if __name__ == "__main__":
    test_framing()
    idx, blob = test_every_op()
    test_pipelined_order()
    test_stream(idx, blob)
    test_connection_errors()
    print("python client: ok")
