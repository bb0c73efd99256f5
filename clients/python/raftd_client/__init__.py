"""raftd client for Python: blocking calls, futures, pipelining and the commit stream.

Speaks only the public protocol (docs/protocol.md): 4-byte big-endian length + one msgpack
map per frame over raftd's Unix socket. One Client is one connection and is thread-safe:
any thread may send requests; per connection, a writer thread sends all frames queued since
its last write in one system call, and a reader thread matches replies to requests by id and
completes their futures, so pipelining needs no bookkeeping by the caller.

It never retries a request by itself: a retried proposal could commit twice. Retrying
safely is what `Session.propose_once` (raftd_client.session) is for.

Contents: the framing helpers (the one Python copy, used by raftd's own test harnesses),
`Client`, `Subscription`, `RaftdError` and its subclasses; `raftd_client.aio` (asyncio),
`raftd_client.session` (exactly-once proposals), `raftd_client.apply` (the apply loop).
"""
import collections
import concurrent.futures
import itertools
import os
import select
import socket
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

import msgpack

__all__ = ["Client", "RaftdError", "ConnectionLost", "DeadlineExceeded", "Proposed", "Event",
           "Subscription", "default_socket", "PROTOCOL_VERSION", "encode_frame",
           "encode_request", "split_frame", "read_frame", "decode_body", "as_bytes",
           "Session"]

PROTOCOL_VERSION = 1
_MAX_FRAME = 64 << 20
_LEN = struct.Struct(">I")

# Codes after which a proposal's fate is unknown (docs/protocol.md, section 5): it may
# still commit. "EXPIRED" is the sessions' "cannot tell any more" (see session.py).
UNKNOWN_OUTCOME = frozenset({"INDETERMINATE", "SHUTTING_DOWN", "CONNECTION", "EXPIRED",
                             "INTERNAL"})


# ---- framing (docs/protocol.md, "Framing"): the one Python copy --------------------------
# Test harnesses and tools that talk to raftd below the Client (raw sockets, bad input,
# stalled readers) use these too, so the framing is written once.

def encode_frame(msg: dict) -> bytes:
    """One frame: the 4-byte big-endian length, then `msg` as one msgpack map (bytes as bin)."""
    body = msgpack.packb(msg, use_bin_type=True)
    return _LEN.pack(len(body)) + body


def encode_request(op: str, rid: int, **fields) -> bytes:
    """The frame of request {"op": op, "id": rid, fields...}, keys in that order."""
    return encode_frame(dict(op=op, id=rid, **fields))


def split_frame(buf: bytearray, max_frame: int = _MAX_FRAME) -> Optional[bytes]:
    """Removes the first whole frame from `buf` and returns its body (the msgpack bytes);
    None while it is incomplete. ValueError for a length of 0 or above max_frame."""
    if len(buf) < 4:
        return None
    (n,) = _LEN.unpack_from(buf)
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
        need = 4 - len(buf) if len(buf) < 4 else 4 + _LEN.unpack_from(buf)[0] - len(buf)
        chunk = sock.recv(min(need, 1 << 16))
        if not chunk:
            return None
        buf += chunk


def take_frames(buf: bytearray, max_frame: int = _MAX_FRAME) -> List[Any]:
    """Decodes every whole frame at the front of `buf` and removes them: the connection
    readers' fast path (one pass, no copy of each body). ValueError for a bad length."""
    out, pos, end = [], 0, len(buf)
    unpackb, unpack_from = msgpack.unpackb, _LEN.unpack_from
    with memoryview(buf) as view:
        while end - pos >= 4:
            (n,) = unpack_from(buf, pos)
            if n == 0 or n > max_frame:
                raise ValueError(f"frame length {n} is outside 1..{max_frame}")
            if end - pos - 4 < n:
                break
            out.append(unpackb(view[pos + 4:pos + 4 + n], raw=False))
            pos += 4 + n
    del buf[:pos]
    return out


def decode_body(body: bytes) -> Any:
    """A frame body as Python values (str as str, bin as bytes)."""
    return msgpack.unpackb(body, raw=False)


def as_bytes(data: Union[bytes, bytearray, memoryview, str]) -> bytes:
    """Entry payloads are bytes. A str is encoded as UTF-8 (so `propose("text")` proposes
    the text's UTF-8 bytes, as `raftctl propose text` does); anything else is a TypeError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"entry data must be bytes (or str, sent as UTF-8), not "
                    f"{type(data).__name__}")


class RaftdError(Exception):
    """An error reply. `code` is the protocol's stable string ("UNAVAILABLE", ...).
    `local` is True when this client decided it without asking raftd (TOO_LARGE before
    sending, a deadline that passed)."""

    def __init__(self, code: str, message: str = "", leader: Optional[dict] = None,
                 local: bool = False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.leader = leader
        self.local = local

    @property
    def may_have_committed(self) -> bool:
        """For a proposal: True when it may still commit (INDETERMINATE and alike)."""
        return self.code in UNKNOWN_OUTCOME


class ConnectionLost(RaftdError):
    """The socket failed or raftd closed the connection (code "CONNECTION"). A proposal
    that was sent before may still commit: treat it like INDETERMINATE."""

    def __init__(self, message: str):
        super().__init__("CONNECTION", message, local=True)


class DeadlineExceeded(RaftdError):
    """No reply within the client-side deadline. For a proposal the code is INDETERMINATE
    (it was sent and may still commit); for other requests TIMEOUT. The connection stays
    usable; a late reply is dropped."""

    def __init__(self, code: str, op: str, seconds: float):
        super().__init__(code, f"no reply to {op} within the client's deadline "
                               f"({seconds:g} s)", local=True)


@dataclass
class Proposed:
    index: int
    term: int
    duplicate: bool = False   # sessions: this (client, seq) had committed before


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

    @property
    def client(self) -> int:
        """Sessions: the proposer's client id (0 when the entry carried none)."""
        return self.raw.get("client", 0)

    @property
    def seq(self) -> int:
        return self.raw.get("seq", 0)


def default_socket(path: Optional[str] = None) -> str:
    """`path` if given, else $RAFTD_SOCKET, else ./raftd.sock."""
    return path or os.environ.get("RAFTD_SOCKET") or "./raftd.sock"


def propose_fields(data, max_entry: Optional[int], client: Optional[int], seq: Optional[int],
                   timeout_ms: Optional[int]) -> dict:
    """The fields of a propose request, checked: data as bytes (str as UTF-8) within the
    server's max_entry (else TOO_LARGE, before sending), client and seq both or neither."""
    data = as_bytes(data)
    if max_entry is not None and len(data) > max_entry:
        raise RaftdError("TOO_LARGE", f"data of {len(data)} bytes is above the server's "
                                      f"max_entry {max_entry}", local=True)
    f = {"data": data}
    if (client is None) != (seq is None):
        raise ValueError("client and seq go together (both or neither)")
    if client is not None:
        if not (1 <= client < 1 << 64 and 1 <= seq < 1 << 64):
            raise ValueError("client and seq are 64-bit integers >= 1")
        f["client"], f["seq"] = client, seq
    if timeout_ms is not None:
        f["timeout_ms"] = int(timeout_ms)
    return f


def request_frame(op: str, rid: int, fields: dict, max_frame: int) -> bytes:
    """The frame of a request, or TOO_LARGE (before sending) above the server's max_frame."""
    body = msgpack.packb(dict(op=op, id=rid, **fields), use_bin_type=True)
    if len(body) > max_frame:
        raise RaftdError("TOO_LARGE", f"{op} request of {len(body)} bytes is above the "
                                      f"server's max_frame {max_frame}", local=True)
    return _LEN.pack(len(body)) + body


def error_of(m: dict) -> RaftdError:
    e = m.get("error") or {}
    return RaftdError(e.get("code", "INTERNAL"), e.get("message", ""), e.get("leader"))


_FUTURE_DONE = (concurrent.futures._base.FINISHED, concurrent.futures._base.CANCELLED,
                concurrent.futures._base.CANCELLED_AND_NOTIFIED)


class _Call(concurrent.futures.Future):
    """One request in flight: a Future whose result is the converted reply (or the
    RaftdError). `reply` keeps the raw map for Client.result().

    The calls of one connection share one Condition (made per Future, it was a fifth of the
    client's CPU per pipelined proposal). A shared condition's notify_all also wakes
    waiters of other calls, so result() and exception() wait in a loop until their own call
    is done; everything else is concurrent.futures.Future's own code."""

    def __init__(self, op: str, rid: int, convert: Optional[Callable[[dict], Any]],
                 timeout: Optional[float], cond: threading.Condition):
        # Future.__init__'s fields, with the shared condition.
        self._condition = cond
        self._state = concurrent.futures._base.PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []
        self.op = op
        self.id = rid
        self.convert = convert
        self.timeout = timeout
        self.reply: Optional[dict] = None

    def _wait(self, timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._state not in _FUTURE_DONE:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._condition.wait(left)

    def result(self, timeout: Optional[float] = None):
        self._wait(timeout)
        return super().result(0)

    def exception(self, timeout: Optional[float] = None):
        self._wait(timeout)
        return super().exception(0)

    def _finish(self, value=None, exc: Optional[BaseException] = None) -> None:
        try:
            if exc is not None:
                self.set_exception(exc)
            else:
                self.set_result(value)
        except concurrent.futures.InvalidStateError:
            pass  # already failed by its deadline or the connection: a late reply is dropped

    def _expire(self) -> None:
        code = "INDETERMINATE" if self.op == "propose" else "TIMEOUT"
        self._finish(exc=DeadlineExceeded(code, self.op, self.timeout or 0))


class Subscription:
    """Iterator over one commit stream. Blocks in __next__ until an event arrives (or the
    subscription's timeout passes: TimeoutError). Events are queued by the connection's
    reader thread as they arrive, so a subscriber that stops reading makes the queue (not
    raftd) grow: consume it, or close() it."""

    def __init__(self, client: "Client", sub_id: int, timeout: Optional[float]):
        self.client = client
        self.id = sub_id
        self.timeout = timeout
        self.queue: collections.deque = collections.deque()
        self.ended: Optional[RaftdError] = None
        self.closed = False
        self._cond = threading.Condition(threading.Lock())

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        ev = self.next(self.timeout)
        if ev is None:
            raise TimeoutError(f"no event on subscription {self.id} within {self.timeout}s")
        return ev

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None if none arrives within `timeout` seconds (None: wait).
        Raises the RaftdError that ended the stream (ConnectionLost, SHUTTING_DOWN, ...)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self.queue:
                if self.ended is not None:
                    raise self.ended
                if self.closed:
                    raise StopIteration
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self.queue.popleft()

    def _push(self, ev: Optional[Event], ended: Optional[RaftdError] = None) -> None:
        with self._cond:
            if ev is not None:
                self.queue.append(ev)
            if ended is not None and self.ended is None:
                self.ended = ended
            self._cond.notify_all()

    def close(self) -> None:
        """Unsubscribes (no event follows)."""
        if self.closed or self.ended is not None:
            return
        self.closed = True
        try:
            self.client.call("unsubscribe", sub=self.id)
        finally:
            self.client._subs.pop(self.id, None)
            with self._cond:
                self.queue.clear()
                self._cond.notify_all()


_members = lambda r: {"members": r["members"], "joint": r["joint"]}  # noqa: E731


def _proposed(r: dict) -> Proposed:
    return Proposed(r["index"], r["term"], bool(r.get("duplicate", False)))


class _Conn:
    """What a connection's reader thread and its senders share. Owns nothing the Client
    needs to be alive for (see Client.__init__)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending: Dict[int, _Call] = {}
        self.subs: Dict[int, "Subscription"] = {}
        # Deadlines: one FIFO of (due, id) per timeout value, so each is in due order (calls
        # register as they are sent); the reader pops expired and answered ones off the front.
        self.deadlines: Dict[float, collections.deque] = {}
        self.broken: Optional[ConnectionLost] = None
        self.closing = False
        self.wq: collections.deque = collections.deque()  # frames for the writer thread
        self.wev = threading.Event()
        self.wlock = threading.Lock()     # one sendall at a time: the writer's or a caller's
        self.writing = False

    def write_loop(self) -> None:
        """The writer thread: sends every frame queued since its last write in one sendall.
        A caller pipelining from one thread queues faster than frames go out, so many
        requests share a system call; their order is the order they were queued."""
        wq, wev, sock = self.wq, self.wev, self.sock
        try:
            while True:
                wev.wait()
                wev.clear()
                if self.closing and not wq:
                    return
                with self.wlock:
                    self.writing = True
                    while wq:
                        frames = [wq.popleft() for _ in range(len(wq))]
                        sock.sendall(frames[0] if len(frames) == 1 else b"".join(frames))
                    self.writing = False
        except OSError as e:
            self.writing = False
            if not self.closing:
                self.fail_all(ConnectionLost(f"send: {e}"))

    def flush(self, timeout: float) -> None:
        """Waits (briefly) until the writer thread has sent what is queued."""
        deadline = time.monotonic() + timeout
        while (self.wq or self.writing) and self.broken is None and time.monotonic() < deadline:
            time.sleep(0.001)

    def shutdown(self) -> None:
        self.closing = True
        self.wev.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def fail_all(self, err: RaftdError) -> None:
        self.broken = self.broken or err
        for rid in list(self.pending):
            c = self.pending.pop(rid, None)
            if c is not None:
                c._finish(exc=self.broken)
        for s in list(self.subs.values()):
            s._push(None, ended=self.broken)

    def read_loop(self) -> None:
        """The reader thread: reads in large chunks, decodes every whole frame, completes
        futures and queues events; fails what is pending when the connection ends."""
        sock = self.sock
        buf = bytearray()
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        pending, subs, fifos = self.pending, self.subs, self.deadlines
        why = "raftd closed the connection"
        try:
            while True:
                wait_ms = 1000
                if fifos:
                    now = time.monotonic()
                    for fifo in list(fifos.values()):
                        while fifo and (fifo[0][0] <= now or fifo[0][1] not in pending):
                            due, rid = fifo.popleft()
                            c = pending.pop(rid, None) if due <= now else None
                            if c is not None:
                                c._expire()
                        if fifo:
                            wait_ms = min(wait_ms, int((fifo[0][0] - now) * 1000) + 1)
                if not poller.poll(wait_ms):
                    continue
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
                for m in take_frames(buf):
                    if "ev" in m:
                        s = subs.get(m.get("id"))
                        if s is None:
                            continue
                        if m["ev"] == "end":
                            subs.pop(s.id, None)
                            s._push(None, ended=error_of(m))
                        else:
                            s._push(_event(m))
                        continue
                    c = pending.pop(m.get("id"), None)
                    if c is None:
                        continue  # given up (deadline) or unknown
                    c.reply = m
                    if m.get("ok"):
                        c._finish(c.convert(m) if c.convert else m)
                    else:
                        c._finish(exc=error_of(m))
        except (OSError, ValueError) as e:
            why = "raftd sent a malformed frame" if isinstance(e, ValueError) else f"recv: {e}"
            if self.closing:
                why = "client closed"
        except Exception as e:  # a bug here must not leave callers waiting forever
            why = f"reader thread failed: {e!r}"
        if self.closing:
            why = "client closed"
        self.fail_all(ConnectionLost(why))
        if self.closing:
            sock.close()


class Client:
    """One connection to a raftd node; thread-safe. Use as a context manager or close().

    `timeout` is the default client-side deadline of each request (None: none). A proposal
    whose deadline passes fails with DeadlineExceeded, code INDETERMINATE: it was sent and
    may still commit. Requests larger than the server's `max_entry`/`max_frame` (learned
    from `hello`) fail locally with TOO_LARGE before anything is sent."""

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
        self._ids = itertools.count(1)
        conn = self._conn = _Conn(self._sock)
        self._pending = conn.pending                # written by senders, popped by the reader
        self._subs = conn.subs
        self._deadlines = conn.deadlines
        self._by_id: Dict[int, _Call] = {}          # send()'s ids, for result(rid)
        self._cond = threading.Condition()          # shared by this connection's calls
        self.max_frame = _MAX_FRAME
        self.max_entry: Optional[int] = None
        self.server: Dict[str, Any] = {}
        # The reader thread holds the connection, not the Client: a Client dropped without
        # close() is collected, and then its connection is shut down and the thread ends.
        self._reader = threading.Thread(target=conn.read_loop, name=f"raftd-reader {self.path}",
                                        daemon=True)
        self._reader.start()
        self._writer = threading.Thread(target=conn.write_loop, name=f"raftd-writer {self.path}",
                                        daemon=True)
        self._writer.start()
        weakref.finalize(self, conn.shutdown)
        if name:
            try:
                self.server = self.hello(name)
            except BaseException:
                self.close()
                raise

    # ---- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn.closing:
            return
        self._conn.flush(2.0)  # what was sent before close() goes out
        self._conn.shutdown()  # wakes the reader and writer threads
        if threading.current_thread() is not self._reader:
            self._reader.join(5)
        self._writer.join(5)
        self._sock.close()
        self._conn.fail_all(ConnectionLost("client closed"))

    @property
    def _broken(self) -> Optional[ConnectionLost]:
        return self._conn.broken

    @_broken.setter
    def _broken(self, err: Optional[ConnectionLost]) -> None:
        self._conn.broken = err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def broken(self) -> Optional[ConnectionLost]:
        """The error that ended this connection, or None while it is usable."""
        return self._broken

    def _new_call(self, op: str, fields: dict, convert, timeout) -> (_Call, bytes):
        if self._broken:
            raise self._broken
        rid = next(self._ids)
        call = _Call(op, rid, convert, self.timeout if timeout == -1 else timeout, self._cond)
        return call, request_frame(op, rid, fields, self.max_frame)

    def _register(self, call: _Call) -> None:
        self._pending[call.id] = call
        if call.timeout is not None:
            fifo = self._deadlines.get(call.timeout)
            if fifo is None:
                fifo = self._deadlines.setdefault(call.timeout, collections.deque())
            fifo.append((time.monotonic() + call.timeout, call.id))

    def _write(self, data: bytes, calls, direct: bool = False) -> None:
        """Queues `data` for the writer thread (no system call here). `direct`: a caller
        about to block on the reply sends it itself when nothing is queued ahead of it and
        no write is under way (one thread hand-off less per blocking call). On a broken
        connection fails `calls` and raises ConnectionLost."""
        conn = self._conn
        if conn.broken is not None:
            for c in calls:
                self._pending.pop(c.id, None)
                c._finish(exc=conn.broken)
            raise conn.broken
        if direct and not conn.wq and conn.wlock.acquire(blocking=False):
            try:
                if not conn.wq:
                    try:
                        self._sock.sendall(data)
                    except OSError as e:
                        conn.fail_all(ConnectionLost(f"send: {e}"))
                        raise conn.broken from None
                    return
            finally:
                conn.wlock.release()
        conn.wq.append(data)
        if not conn.wev.is_set():  # else the writer has yet to wake, and takes this frame too
            conn.wev.set()

    def request(self, op: str, timeout: Optional[float] = -1,
                convert: Optional[Callable[[dict], Any]] = None, _direct: bool = False,
                **fields) -> concurrent.futures.Future:
        """Sends one request; returns a Future of its reply map (or of convert(reply)).
        The Future fails with RaftdError. timeout -1: the client's default."""
        call, frame = self._new_call(op, fields, convert, timeout)
        self._register(call)
        self._write(frame, (call,), _direct)
        return call

    def send(self, op: str, **fields) -> int:
        """Sends one request without waiting; returns its id (see result())."""
        call = self.request(op, **fields)
        self._by_id[call.id] = call
        return call.id

    def result(self, rid: Union[int, concurrent.futures.Future],
               timeout: Optional[float] = -1) -> dict:
        """Waits for the reply to request `rid` (an id from send() or a Future from
        request()/propose_async()); returns its map or raises RaftdError. If `timeout`
        (-1: the client's default) passes first the request is given up: a proposal raises
        DeadlineExceeded with code INDETERMINATE, anything else with code TIMEOUT."""
        call = self._by_id.pop(rid, None) if isinstance(rid, int) else rid
        if call is None:
            raise KeyError(f"no request {rid} in flight on this connection")
        if timeout == -1:
            timeout = self.timeout
        try:
            call.result(timeout)
        except concurrent.futures.TimeoutError:
            self._pending.pop(call.id, None)
            call._expire()
            call.result(0)  # raises (or returns a reply that won the race)
        return call.reply

    def call(self, op: str, **fields) -> dict:
        return self.result(self.request(op, _direct=True, **fields))

    # ---- operations ------------------------------------------------------------------------

    def hello(self, name: Optional[str] = None) -> dict:
        f = {"version": PROTOCOL_VERSION}
        if name:
            f["name"] = name
        r = self.call("hello", **f)
        self.max_frame = int(r.get("max_frame") or _MAX_FRAME)
        self.max_entry = r.get("max_entry")
        return r

    def ping(self) -> None:
        self.call("ping")

    def _propose_call(self, data, client, seq, timeout, timeout_ms):
        return self._new_call("propose", propose_fields(data, self.max_entry, client, seq,
                                                        timeout_ms), _proposed, timeout)

    def propose_async(self, data: Union[bytes, str], *, client: Optional[int] = None,
                      seq: Optional[int] = None, timeout: Optional[float] = -1,
                      timeout_ms: Optional[int] = None) -> concurrent.futures.Future:
        """Sends a proposal without waiting; returns a Future of its Proposed (index, term).
        The Future fails with RaftdError as propose() raises. `client.result(future)` gives
        the raw reply map (the pre-futures API: result(rid)["index"])."""
        return self._propose(data, client, seq, timeout, timeout_ms, False)

    def _propose(self, data, client, seq, timeout, timeout_ms, direct) -> "_Call":
        call, frame = self._propose_call(data, client, seq, timeout, timeout_ms)
        self._register(call)
        self._write(frame, (call,), direct)
        return call

    def propose_many(self, items: Iterable[Union[bytes, str]],
                     timeout: Optional[float] = -1) -> List[concurrent.futures.Future]:
        """Pipelines many proposals in one write; one Future each, in order (their indexes
        are increasing, docs/protocol.md 6.2)."""
        calls, frames = [], []
        for data in items:
            call, frame = self._propose_call(data, None, None, timeout, None)
            calls.append(call)
            frames.append(frame)
        for c in calls:
            self._register(c)
        self._write(b"".join(frames), calls)
        return calls

    def propose(self, data: Union[bytes, str], *, client: Optional[int] = None,
                seq: Optional[int] = None, timeout: Optional[float] = -1,
                timeout_ms: Optional[int] = None) -> Proposed:
        """Appends `data` (bytes; a str is sent as UTF-8); returns once committed.
        RaftdError UNAVAILABLE: definitely not committed (safe to retry); INDETERMINATE
        (also a passed client deadline, and ConnectionLost): may commit. `client`/`seq`:
        an exactly-once key (see Session); `timeout_ms`: how long raftd may wait for a
        leader. `timeout`: the client-side deadline in seconds (-1: the client's)."""
        f = self._propose(data, client, seq, timeout, timeout_ms, True)
        self.result(f, f.timeout)
        return f.result(0)

    def read_index(self) -> int:
        return self.call("read_index")["index"]

    def status(self) -> dict:
        r = self.call("status")
        return {k: v for k, v in r.items() if k not in ("id", "ok")}

    def members(self) -> dict:
        return _members(self.call("members"))

    def add_member(self, node: int, addr: str, learner: bool = False) -> dict:
        return _members(self.call("add_member", node=node, addr=addr, learner=learner))

    def remove_member(self, node: int) -> dict:
        return _members(self.call("remove_member", node=node))

    def promote(self, node: int) -> dict:
        return _members(self.call("promote", node=node))

    def demote(self, node: int) -> dict:
        return _members(self.call("demote", node=node))

    def change_members(self, add=(), remove=()) -> dict:
        return _members(self.call("change_members", add=list(add), remove=list(remove)))

    def transfer_leader(self, to: int) -> int:
        return self.call("transfer_leader", to=to)["leader"]

    def campaign(self) -> int:
        return self.call("campaign")["term"]

    def snapshot(self, index: int, data: bytes, chunk: Optional[int] = None) -> int:
        """Saves `data` as the application snapshot through `index`, in pipelined chunks.
        Returns the index of the node's snapshot that covers `index` now: `index`, or a larger
        one when the node already had a snapshot at or above it (then `data` is dropped;
        docs/protocol.md, `snapshot`)."""
        chunk = chunk or int(self.max_entry or (1 << 20))
        data = as_bytes(data)
        calls, frames, offset = [], [], 0
        while True:
            last = len(data) - offset <= chunk
            c, frame = self._new_call("snapshot", dict(index=index, offset=offset,
                                                       data=data[offset:offset + chunk],
                                                       done=last), None, -1)
            calls.append(c)
            frames.append(frame)
            offset += chunk
            if last:
                break
        for c in calls:
            self._register(c)
        self._write(b"".join(frames), calls, True)
        first_error = None
        r = None
        for c in calls:
            try:
                r = self.result(c)
            except RaftdError as e:
                first_error = first_error or e
        if first_error:
            raise first_error
        return r["index"]

    def subscribe(self, from_: Optional[int] = None,
                  timeout: Optional[float] = None) -> Subscription:
        """Starts a commit stream from index `from_` (None: only new entries; 1: all).
        Iterating blocks up to `timeout` per event (None: forever)."""
        f = {} if from_ is None else {"from": from_}
        call, frame = self._new_call("subscribe", f, None, -1)
        sub = Subscription(self, call.id, timeout)
        self._subs[call.id] = sub  # before sending: events may follow the reply at once
        self._register(call)
        try:
            self._write(frame, (call,), True)
            self.result(call)
        except RaftdError:
            self._subs.pop(call.id, None)
            raise
        return sub


def _event(m: dict) -> Event:
    kind = m.get("ev")
    return Event(kind=kind, sub=m.get("id", 0), index=m.get("index", 0), term=m.get("term", 0),
                 type=m.get("type", "snapshot" if kind == "snapshot" else ""),
                 data=m.get("data") or b"", offset=m.get("offset", 0), done=m.get("done", False),
                 members=m.get("members"), joint=m.get("joint", False), raw=m)


from .session import Session  # noqa: E402  (imports Client from here)
