"""raftd client for Python: blocking calls, pipelining and an iterator over the commit stream.

Speaks only the public protocol (docs/protocol.md): 4-byte big-endian length + one msgpack
map per frame over raftd's Unix socket. One Client is one connection; it is not
thread-safe (use one per thread). It never retries a request by itself: a retried proposal
could commit twice.
"""
import collections
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

import msgpack

__all__ = ["Client", "RaftdError", "ConnectionLost", "Proposed", "Event", "Subscription",
           "default_socket", "PROTOCOL_VERSION", "encode_frame", "encode_request",
           "split_frame", "read_frame", "decode_body"]

PROTOCOL_VERSION = 1
_MAX_FRAME = 64 << 20


# ---- framing (docs/protocol.md, "Framing"): the one Python copy --------------------------
# Test harnesses and tools that talk to raftd below the Client (raw sockets, bad input,
# stalled readers) use these too, so the framing is written once.

def encode_frame(msg: dict) -> bytes:
    """One frame: the 4-byte big-endian length, then `msg` as one msgpack map (bytes as bin)."""
    body = msgpack.packb(msg, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def encode_request(op: str, rid: int, **fields) -> bytes:
    """The frame of request {"op": op, "id": rid, fields...}, keys in that order."""
    return encode_frame(dict(op=op, id=rid, **fields))


def split_frame(buf: bytearray, max_frame: int = _MAX_FRAME) -> Optional[bytes]:
    """Removes the first whole frame from `buf` and returns its body (the msgpack bytes);
    None while it is incomplete. ValueError for a length of 0 or above max_frame."""
    if len(buf) < 4:
        return None
    (n,) = struct.unpack_from(">I", buf)
    if n == 0 or n > max_frame:
        raise ValueError(f"frame length {n} is outside 1..{max_frame}")
    if len(buf) < 4 + n:
        return None
    body = bytes(buf[4:4 + n])
    del buf[:4 + n]
    return body


def read_frame(sock: socket.socket, buf: Optional[bytearray] = None) -> Optional[bytes]:
    """Blocks until one whole frame has arrived on `sock`; returns its body, or None when the
    peer closed first. Reads no byte past that frame, so a caller may stop reading after it
    (a stalled subscriber); `buf` keeps a partial frame across a socket timeout."""
    if buf is None:
        buf = bytearray()
    while True:
        body = split_frame(buf)
        if body is not None:
            return body
        need = 4 - len(buf) if len(buf) < 4 else 4 + struct.unpack_from(">I", buf)[0] - len(buf)
        chunk = sock.recv(min(need, 1 << 16))
        if not chunk:
            return None
        buf += chunk


def decode_body(body: bytes) -> Any:
    """A frame body as Python values (str as str, bin as bytes)."""
    return msgpack.unpackb(body, raw=False)


class RaftdError(Exception):
    """An error reply. `code` is the protocol's stable string ("UNAVAILABLE", ...)."""

    def __init__(self, code: str, message: str = "", leader: Optional[dict] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.leader = leader


class ConnectionLost(RaftdError):
    """The socket failed or raftd closed the connection (code "CONNECTION")."""

    def __init__(self, message: str):
        super().__init__("CONNECTION", message)


@dataclass
class Proposed:
    index: int
    term: int


@dataclass
class Event:
    """One event of a subscription: kind "entry" or "snapshot" (an "end" event is raised
    from the iterator as RaftdError)."""
    kind: str
    sub: int
    index: int = 0
    term: int = 0
    type: str = ""          # entries: "data" | "noop" | "config"
    data: bytes = b""
    offset: int = 0         # snapshot chunks
    done: bool = False      # snapshot chunks: the last one
    members: Optional[List[dict]] = None
    joint: bool = False
    raw: Dict[str, Any] = field(default_factory=dict)


def default_socket(path: Optional[str] = None) -> str:
    """`path` if given, else $RAFTD_SOCKET, else ./raftd.sock."""
    return path or os.environ.get("RAFTD_SOCKET") or "./raftd.sock"


class Subscription:
    """Iterator over one commit stream. Blocks in __next__ until an event arrives (or the
    subscription's timeout passes: TimeoutError)."""

    def __init__(self, client: "Client", sub_id: int, timeout: Optional[float]):
        self.client = client
        self.id = sub_id
        self.timeout = timeout
        self.queue: collections.deque = collections.deque()
        self.ended: Optional[RaftdError] = None
        self.closed = False

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        ev = self.next(self.timeout)
        if ev is None:
            raise TimeoutError(f"no event on subscription {self.id} within {self.timeout}s")
        return ev

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None if none arrives within `timeout` seconds (None: wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.queue:
            if self.ended is not None:
                raise self.ended
            if self.closed:
                raise StopIteration
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self.client._pump(left)
        return self.queue.popleft()

    def close(self) -> None:
        """Unsubscribes (no event follows)."""
        if self.closed or self.ended is not None:
            return
        self.closed = True
        try:
            self.client.call("unsubscribe", sub=self.id)
        finally:
            self.client._subs.pop(self.id, None)
            self.queue.clear()


class Client:
    """One connection to a raftd node. Use as a context manager or call close()."""

    def __init__(self, path: Optional[str] = None, timeout: Optional[float] = 30.0,
                 name: Optional[str] = "raftd-python"):
        self.path = default_socket(path)
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            raise ConnectionLost(f"cannot connect to {self.path}: {e.strerror or e}") from None
        self._buf = bytearray()
        self._next_id = 1
        self._replies: Dict[int, dict] = {}
        self._waiting: set = set()
        self._subs: Dict[int, Subscription] = {}
        self._broken: Optional[ConnectionLost] = None
        self.server: Dict[str, Any] = {}
        if name:
            self.server = self.hello(name)

    # ---- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            self._broken = self._broken or ConnectionLost("client closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, op: str, **fields) -> int:
        """Sends one request without waiting; returns its id (see result())."""
        if self._broken:
            raise self._broken
        rid = self._next_id
        self._next_id += 1
        try:
            self._sock.sendall(encode_request(op, rid, **fields))
        except OSError as e:
            self._fail(f"send: {e}")
        self._waiting.add(rid)
        return rid

    def result(self, rid: int, timeout: Optional[float] = -1) -> dict:
        """Waits for the reply to request `rid`; returns its map or raises RaftdError.
        timeout -1 means the client's default."""
        if timeout == -1:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while rid not in self._replies:
            if self._broken:
                raise self._broken
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self._waiting.discard(rid)  # a late reply is dropped
                raise RaftdError("TIMEOUT", "no reply within the client's deadline")
            self._pump(left)
        m = self._replies.pop(rid)
        self._waiting.discard(rid)
        if not m.get("ok"):
            e = m.get("error") or {}
            raise RaftdError(e.get("code", "INTERNAL"), e.get("message", ""), e.get("leader"))
        return m

    def call(self, op: str, **fields) -> dict:
        return self.result(self.send(op, **fields))

    def _fail(self, why: str):
        self._broken = ConnectionLost(why)
        for s in self._subs.values():
            if s.ended is None:
                s.ended = self._broken
        raise self._broken

    def _pump(self, timeout: Optional[float]) -> None:
        """Reads at least one chunk (or waits up to `timeout`) and dispatches whole frames."""
        if self._dispatch():
            return
        self._sock.settimeout(timeout)
        try:
            chunk = self._sock.recv(1 << 16)
        except socket.timeout:
            return
        except OSError as e:
            self._fail(f"recv: {e}")
        if not chunk:
            self._dispatch()
            self._fail("raftd closed the connection")
        self._buf += chunk
        self._dispatch()

    def _dispatch(self) -> bool:
        """Dispatches every whole frame buffered; True if any was."""
        any_ = False
        while True:
            try:
                body = split_frame(self._buf)
            except ValueError:
                self._fail("raftd sent a malformed frame")
            if body is None:
                break
            m = decode_body(body)
            any_ = True
            if "ev" in m:
                s = self._subs.get(m.get("id"))
                if s is None:
                    continue
                if m["ev"] == "end":
                    e = m.get("error") or {}
                    s.ended = RaftdError(e.get("code", "INTERNAL"), e.get("message", ""))
                    self._subs.pop(s.id, None)
                    continue
                s.queue.append(_event(m))
            elif m.get("id") in self._waiting:
                self._replies[m["id"]] = m
        return any_

    # ---- operations ------------------------------------------------------------------------

    def hello(self, name: Optional[str] = None) -> dict:
        f = {"version": PROTOCOL_VERSION}
        if name:
            f["name"] = name
        return self.call("hello", **f)

    def ping(self) -> None:
        self.call("ping")

    def propose(self, data: bytes) -> Proposed:
        """Appends `data`; returns once committed. RaftdError UNAVAILABLE: definitely
        not committed (safe to retry); INDETERMINATE: may commit (check the stream first)."""
        r = self.call("propose", data=bytes(data))
        return Proposed(r["index"], r["term"])

    def propose_async(self, data: bytes) -> int:
        """Sends a proposal without waiting; result(rid) gives its reply map."""
        return self.send("propose", data=bytes(data))

    def read_index(self) -> int:
        return self.call("read_index")["index"]

    def status(self) -> dict:
        r = self.call("status")
        return {k: v for k, v in r.items() if k not in ("id", "ok")}

    def members(self) -> dict:
        r = self.call("members")
        return {"members": r["members"], "joint": r["joint"]}

    def add_member(self, node: int, addr: str, learner: bool = False) -> dict:
        r = self.call("add_member", node=node, addr=addr, learner=learner)
        return {"members": r["members"], "joint": r["joint"]}

    def remove_member(self, node: int) -> dict:
        r = self.call("remove_member", node=node)
        return {"members": r["members"], "joint": r["joint"]}

    def promote(self, node: int) -> dict:
        r = self.call("promote", node=node)
        return {"members": r["members"], "joint": r["joint"]}

    def demote(self, node: int) -> dict:
        r = self.call("demote", node=node)
        return {"members": r["members"], "joint": r["joint"]}

    def change_members(self, add=(), remove=()) -> dict:
        r = self.call("change_members", add=list(add), remove=list(remove))
        return {"members": r["members"], "joint": r["joint"]}

    def transfer_leader(self, to: int) -> int:
        return self.call("transfer_leader", to=to)["leader"]

    def campaign(self) -> int:
        return self.call("campaign")["term"]

    def snapshot(self, index: int, data: bytes, chunk: Optional[int] = None) -> int:
        """Saves `data` as the application snapshot through `index`, in pipelined chunks.
        Returns the index of the node's snapshot that covers `index` now: `index`, or a larger
        one when the node already had a snapshot at or above it (then `data` is dropped;
        docs/protocol.md, `snapshot`)."""
        chunk = chunk or int(self.server.get("max_entry") or (1 << 20))
        data = bytes(data)
        ids, offset = [], 0
        while len(data) - offset > chunk:
            ids.append(self.send("snapshot", index=index, offset=offset,
                                 data=data[offset:offset + chunk], done=False))
            offset += chunk
        last = self.send("snapshot", index=index, offset=offset, data=data[offset:], done=True)
        first_error = None
        for rid in ids:
            try:
                self.result(rid)
            except RaftdError as e:
                first_error = first_error or e
        try:
            r = self.result(last)
        except RaftdError as e:
            raise first_error or e
        if first_error:
            raise first_error
        return r["index"]

    def subscribe(self, from_: Optional[int] = None,
                  timeout: Optional[float] = None) -> Subscription:
        """Starts a commit stream from index `from_` (None: only new entries; 1: all).
        Iterating blocks up to `timeout` per event (None: forever)."""
        rid = self._next_id
        sub = Subscription(self, rid, timeout)
        self._subs[rid] = sub  # before sending: events may follow the reply at once
        f = {} if from_ is None else {"from": from_}
        try:
            self.result(self.send("subscribe", **f))
        except RaftdError:
            self._subs.pop(rid, None)
            raise
        return sub


def _event(m: dict) -> Event:
    kind = m.get("ev")
    return Event(kind=kind, sub=m.get("id", 0), index=m.get("index", 0), term=m.get("term", 0),
                 type=m.get("type", "snapshot" if kind == "snapshot" else ""),
                 data=m.get("data") or b"", offset=m.get("offset", 0), done=m.get("done", False),
                 members=m.get("members"), joint=m.get("joint", False), raw=m)
