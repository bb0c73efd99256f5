"""asyncio client for raftd: the same protocol as raftd_client.Client, as coroutines.

    async with await AsyncClient.connect("/run/raftd/raftd.sock") as c:
        p = await c.propose(b"hello")            # Proposed(index, term)
        async for ev in await c.subscribe(1):    # the commit stream
            ...

One AsyncClient is one connection, used from one event loop. Any number of coroutines may
await requests on it at once: they are pipelined, and one reader task matches replies to
requests by id. Errors and limits are the blocking client's: RaftdError, ConnectionLost,
DeadlineExceeded (code INDETERMINATE for a proposal whose deadline passed: it may still
commit), TOO_LARGE before sending anything too big, str data sent as UTF-8.
Owns: one connection and its reader task. Never: retries a request.
"""
import asyncio
import collections
import heapq
import itertools
from typing import Any, Dict, Optional, Union


from . import (_MAX_FRAME, PROTOCOL_VERSION, ConnectionLost, DeadlineExceeded, Event,
               Proposed, RaftdError, _event, _proposed, as_bytes, default_socket, error_of,
               propose_fields, request_frame, take_frames)

__all__ = ["AsyncClient", "AsyncSubscription"]


class AsyncSubscription:
    """Async iterator over one commit stream (raises the RaftdError that ended it)."""

    def __init__(self, client: "AsyncClient", sub_id: int):
        self.client = client
        self.id = sub_id
        self.queue: asyncio.Queue = asyncio.Queue()

    def __aiter__(self):
        return self

    async def __anext__(self) -> Event:
        item = await self.queue.get()
        if isinstance(item, BaseException):
            self.queue.put_nowait(item)  # every later call raises it too
            raise item
        return item

    async def close(self) -> None:
        if self.id in self.client._subs:
            await self.client.call("unsubscribe", sub=self.id)
            self.client._subs.pop(self.id, None)


class AsyncClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 path: str, timeout: Optional[float]):
        self.path = path
        self.timeout = timeout
        self._r, self._w = reader, writer
        self._ids = itertools.count(1)
        self._pending: Dict[int, tuple] = {}   # id -> (future, op, timeout)
        self._deadlines: collections.deque = collections.deque()  # (due, id) to _expire_loop
        self._out: list = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self._subs: Dict[int, AsyncSubscription] = {}
        self._broken: Optional[ConnectionLost] = None
        self.max_frame = _MAX_FRAME
        self.max_entry: Optional[int] = None
        self.server: Dict[str, Any] = {}
        self._task = self._loop.create_task(self._read_loop())
        self._timer = self._loop.create_task(self._expire_loop())

    @classmethod
    async def connect(cls, path: Optional[str] = None, timeout: Optional[float] = 30.0,
                      name: Optional[str] = "raftd-python-aio") -> "AsyncClient":
        path = default_socket(path)
        try:
            r, w = await asyncio.open_unix_connection(path, limit=1 << 22)
        except OSError as e:
            raise ConnectionLost(f"cannot connect to {path}: {e.strerror or e}") from None
        c = cls(r, w, path, timeout)
        if name:
            try:
                c.server = await c.hello(name)
            except BaseException:
                await c.close()
                raise
        return c

    async def close(self) -> None:
        self._broken = self._broken or ConnectionLost("client closed")
        self._w.close()
        for t in (self._task, self._timer):
            t.cancel()
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._fail_all(self._broken)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False

    def _fail_all(self, err: RaftdError) -> None:
        self._broken = self._broken or err
        for fut, _, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(self._broken)
        self._pending.clear()
        for s in self._subs.values():
            s.queue.put_nowait(self._broken)
        self._subs.clear()

    async def _read_loop(self) -> None:
        """Reads large chunks and dispatches every whole frame in them."""
        why = "raftd closed the connection"
        buf = bytearray()
        try:
            while True:
                chunk = await self._r.read(1 << 20)
                if not chunk:
                    break
                buf += chunk
                for m in take_frames(buf):
                    self._dispatch(m)
        except ValueError:
            why = "raftd sent a malformed frame"
        except OSError as e:
            why = f"recv: {e}"
        self._fail_all(ConnectionLost(why))

    def _dispatch(self, m: dict) -> None:
        if "ev" in m:
            s = self._subs.get(m.get("id"))
            if s is None:
                return
            if m["ev"] == "end":
                self._subs.pop(s.id, None)
                s.queue.put_nowait(error_of(m))
            else:
                s.queue.put_nowait(_event(m))
            return
        p = self._pending.pop(m.get("id"), None)
        if p is None or p[0].done():
            return
        if m.get("ok"):
            p[0].set_result(m)
        else:
            p[0].set_exception(error_of(m))

    async def _expire_loop(self) -> None:
        """Fails requests whose client-side deadline passed (one timer for all of them)."""
        heap = []
        loop = asyncio.get_running_loop()
        while True:
            while self._deadlines:
                heapq.heappush(heap, self._deadlines.popleft())
            now = loop.time()
            while heap and (heap[0][0] <= now or heap[0][1] not in self._pending):
                due, rid = heapq.heappop(heap)
                if due <= now and rid in self._pending:
                    fut, op, timeout = self._pending.pop(rid)
                    if not fut.done():
                        fut.set_exception(DeadlineExceeded(
                            "INDETERMINATE" if op == "propose" else "TIMEOUT", op, timeout))
            await asyncio.sleep(0.05)

    def _send(self, op: str, fields: dict, timeout=-1) -> "tuple[int, asyncio.Future]":
        if self._broken:
            raise self._broken
        rid = next(self._ids)
        frame = request_frame(op, rid, fields, self.max_frame)
        loop = self._loop
        fut = loop.create_future()
        if timeout == -1:
            timeout = self.timeout
        self._pending[rid] = (fut, op, timeout)
        if timeout is not None:
            self._deadlines.append((loop.time() + timeout, rid))
        # Every request of this loop iteration goes out in one write.
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return rid, fut

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and not self._broken:
            self._w.write(b"".join(self._out))
        self._out.clear()

    async def _wait(self, rid: int, fut: asyncio.Future) -> dict:
        if self._w.transport.get_write_buffer_size() > (1 << 20):
            await self._w.drain()
        return await fut

    async def call(self, op: str, timeout: Optional[float] = -1, **fields) -> dict:
        """One request; its reply map. `timeout`: the client-side deadline (-1: the
        client's); when it passes the call raises DeadlineExceeded."""
        rid, fut = self._send(op, fields, timeout)
        return await self._wait(rid, fut)

    # ---- operations ------------------------------------------------------------------------

    async def hello(self, name: Optional[str] = None) -> dict:
        f = {"version": PROTOCOL_VERSION}
        if name:
            f["name"] = name
        r = await self.call("hello", **f)
        self.max_frame = int(r.get("max_frame") or _MAX_FRAME)
        self.max_entry = r.get("max_entry")
        return r

    async def ping(self) -> None:
        await self.call("ping")

    async def propose(self, data: Union[bytes, str], *, client: Optional[int] = None,
                      seq: Optional[int] = None, timeout: Optional[float] = -1,
                      timeout_ms: Optional[int] = None) -> Proposed:
        """As Client.propose: committed, or RaftdError (INDETERMINATE when the client
        deadline passes)."""
        f = propose_fields(data, self.max_entry, client, seq, timeout_ms)
        return _proposed(await self.call("propose", timeout=timeout, **f))

    async def read_index(self) -> int:
        return (await self.call("read_index"))["index"]

    async def status(self) -> dict:
        r = await self.call("status")
        return {k: v for k, v in r.items() if k not in ("id", "ok")}

    async def snapshot(self, index: int, data: bytes, chunk: Optional[int] = None) -> int:
        """As Client.snapshot: the index of the snapshot that covers `index` now."""
        chunk = chunk or int(self.max_entry or (1 << 20))
        data = as_bytes(data)
        sent, offset = [], 0
        while True:
            last = len(data) - offset <= chunk
            sent.append(self._send("snapshot", dict(index=index, offset=offset,
                                                    data=data[offset:offset + chunk],
                                                    done=last)))
            offset += chunk
            if last:
                break
        first_error, r = None, None
        for rid, fut in sent:
            try:
                r = await self._wait(rid, fut)
            except RaftdError as e:
                first_error = first_error or e
        if first_error:
            raise first_error
        return r["index"]

    async def subscribe(self, from_: Optional[int] = None) -> AsyncSubscription:
        f = {} if from_ is None else {"from": from_}
        rid, fut = self._send("subscribe", f)
        sub = AsyncSubscription(self, rid)
        self._subs[rid] = sub  # events may follow the reply at once
        try:
            await self._wait(rid, fut)
        except RaftdError:
            self._subs.pop(rid, None)
            raise
        return sub
