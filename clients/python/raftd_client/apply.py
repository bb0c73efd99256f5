"""The apply loop every raftd application needs (docs/applications.md).

    loop = ApplyLoop(socket, apply=state.apply, snapshot=state.dump, restore=state.load,
                     snapshot_every_entries=1000).start()
    p = loop.propose(b"...")            # committed, and applied here (read-your-writes)
    loop.linearizable_read()            # read_index, then wait until applied through it
    with loop.lock: value = state.get(...)

A background thread subscribes to the commit stream from the last applied index + 1,
assembles snapshot chunks (starting over at every chunk with offset 0, docs/protocol.md
6.3) and hands the whole snapshot to `restore(bytes)`, checks that entry indexes are
contiguous, calls `apply(entry)` for each data entry (an Event: .index, .term, .data, and
.client/.seq for exactly-once proposals), saves `snapshot() -> bytes` every N entries or
bytes through the applied index (uploaded on the stream's own connection; an upload the
node's snapshot already covers counts as done), and after a lost connection (the daemon
restarted) reconnects and resubscribes from where it stopped. `apply`, `restore` and
`snapshot` run on that thread with `loop.lock` held; readers take the lock too.

Owns: its stream connection, a command connection, one thread. Never: interprets entry
data, retries a proposal, or skips an entry (an exception from apply stops the loop).
"""
import logging
import threading
import time
from typing import Callable, List, Optional, Sequence, Union

from . import Client, ConnectionLost, Event, Proposed, RaftdError

log = logging.getLogger("raftd_client.apply")

__all__ = ["ApplyLoop", "StreamError"]


class StreamError(RaftdError):
    """The commit stream broke its documented shape (a gap, a stray snapshot chunk); the
    loop resubscribes from its applied index."""

    def __init__(self, message: str):
        super().__init__("STREAM", message, local=True)


class ApplyLoop:
    """See the module doc. `sockets`: one raftd socket path or several (tried in turn on
    reconnect). `applied_index`: where the application's state already is (0: empty; an
    application with durable state passes its own). `snapshot`/`restore`: None means the
    application never snapshots; without restore() it cannot follow a node whose log was
    compacted below its applied index (the loop stops with RuntimeError). `on_entry`: also called (under the lock) for noop and config
    entries. The policy: a snapshot after `snapshot_every_entries` applied entries or
    `snapshot_every_bytes` applied data bytes since the last one (None: never)."""

    def __init__(self, sockets: Union[str, Sequence[str], None],
                 apply: Callable[[Event], None],
                 snapshot: Optional[Callable[[], bytes]] = None,
                 restore: Optional[Callable[[bytes], None]] = None, *,
                 applied_index: int = 0,
                 snapshot_every_entries: Optional[int] = None,
                 snapshot_every_bytes: Optional[int] = None,
                 on_entry: Optional[Callable[[Event], None]] = None,
                 request_timeout: float = 30.0,
                 reconnect_min: float = 0.05, reconnect_max: float = 1.0,
                 name: str = "raftd-apply"):
        if sockets is None or isinstance(sockets, str):
            sockets = [sockets]
        self.sockets: List[Optional[str]] = list(sockets)
        self._apply, self._snapshot, self._restore = apply, snapshot, restore
        self._on_entry = on_entry
        self.every_entries = snapshot_every_entries
        self.every_bytes = snapshot_every_bytes
        self.request_timeout = request_timeout
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.name = name
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self.applied = applied_index        # the last index applied to the state
        self.restored_from = 0              # the index of the last snapshot restored
        self.snapshots_saved = 0            # uploads this loop made
        self.node_snapshot = 0              # the covering snapshot index the node reported
        self.connects = 0                   # subscriptions made (1 + reconnects)
        self.error: Optional[BaseException] = None  # what stopped the loop for good
        self._since_entries = self._since_bytes = 0
        self._stopping = False
        self._stream: Optional[Client] = None
        self._cmd: Optional[Client] = None
        self._cmd_lock = threading.Lock()
        self._next_socket = 0
        self._thread: Optional[threading.Thread] = None

    # ---- lifetime ------------------------------------------------------------------------

    def start(self) -> "ApplyLoop":
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        s = self._stream
        if s is not None:
            s.close()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(10)
        with self._cmd_lock:
            if self._cmd is not None:
                self._cmd.close()
                self._cmd = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- what the application calls -----------------------------------------------------

    def wait_applied(self, index: int, timeout: Optional[float] = None) -> int:
        """Blocks until the state includes entry `index`; returns the applied index.
        TimeoutError after `timeout` seconds; the loop's fatal error if it stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.applied < index:
                if self.error is not None:
                    raise self.error
                if self._stopping:
                    raise RaftdError("SHUTTING_DOWN", "the apply loop was stopped", local=True)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"index {index} not applied within {timeout} s "
                                       f"(applied {self.applied})")
                self._cond.wait(left if left is None or left < 1 else 1)
            return self.applied

    def linearizable_read(self, timeout: Optional[float] = None) -> int:
        """read_index, then wait_applied: afterwards a read of the state (under `lock`)
        reflects every write acknowledged before this call began. Returns the index."""
        return self.wait_applied(self._command(lambda c: c.read_index(), retry=True), timeout)

    def propose(self, data: Union[bytes, str], wait: bool = True,
                timeout: Optional[float] = None, **kw) -> Proposed:
        """Proposes `data` on the command connection; with `wait`, returns once this loop
        has applied it too. Never retried (see raftd_client.session for that)."""
        p = self._command(lambda c: c.propose(data, **kw), retry=False)
        if wait:
            self.wait_applied(p.index, timeout)
        return p

    @property
    def client(self) -> Client:
        """The command connection (opened on first use)."""
        with self._cmd_lock:
            if self._cmd is None or self._cmd.broken is not None:
                if self._cmd is not None:
                    self._cmd.close()
                self._cmd = Client(self._socket(), timeout=self.request_timeout,
                                   name=self.name + "-cmd")
            return self._cmd

    def _command(self, fn, retry: bool):
        try:
            return fn(self.client)
        except ConnectionLost:
            if not retry:
                raise
            return fn(self.client)  # a read is safe to send again on a new connection

    # ---- the loop thread -----------------------------------------------------------------

    def _socket(self) -> Optional[str]:
        return self.sockets[self._next_socket % len(self.sockets)]

    def _run(self) -> None:
        pause = self.reconnect_min
        while not self._stopping:
            try:
                self._stream = Client(self._socket(), timeout=self.request_timeout,
                                      name=self.name)
                if self._stopping:
                    break
                self.node_snapshot = max(self.node_snapshot,
                                         self._stream.status().get("snapshot_index", 0))
                sub = self._stream.subscribe(from_=self.applied + 1)
                self.connects += 1
                pause = self.reconnect_min
                self._consume(sub)
            except (RaftdError, OSError) as e:
                if self._stopping:
                    break
                log.warning("%s: %s; resubscribing from %d in %.2f s", self.name, e,
                            self.applied + 1, pause)
                if isinstance(e, ConnectionLost) and len(self.sockets) > 1:
                    self._next_socket += 1
            except BaseException as e:  # a callback failed, or no restore(): stop for good
                log.error("%s: stopped: %r", self.name, e)
                with self._cond:
                    self.error = e
                    self._cond.notify_all()
                break
            finally:
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
            time.sleep(pause)
            pause = min(pause * 2, self.reconnect_max)

    def _consume(self, sub) -> None:
        snap = None                           # the snapshot being assembled
        while not self._stopping:
            ev = sub.next(0.5)
            if ev is None:
                continue
            if ev.kind == "snapshot":
                if ev.offset == 0:
                    snap = bytearray()        # a new snapshot: drop any partial one
                elif snap is None or ev.offset != len(snap):
                    raise StreamError(f"snapshot chunk at offset {ev.offset}, expected "
                                      f"{0 if snap is None else len(snap)}")
                snap += ev.data
                if ev.done:
                    if self._restore is None:  # resubscribing would get it again: stop
                        raise RuntimeError(f"the stream sent a snapshot at {ev.index} but "
                                           "this application has no restore()")
                    with self._cond:
                        self._restore(bytes(snap))
                        self.applied = self.restored_from = ev.index
                        self.node_snapshot = max(self.node_snapshot, ev.index)
                        self._since_entries = self._since_bytes = 0
                        self._cond.notify_all()
                    snap = None
                continue
            if snap is not None:
                raise StreamError(f"entry {ev.index} inside a snapshot")
            if ev.index != self.applied + 1:
                raise StreamError(f"entry {ev.index} after {self.applied}: not contiguous")
            with self._cond:
                if ev.type == "data":
                    self._apply(ev)
                    self._since_bytes += len(ev.data)
                elif self._on_entry is not None:
                    self._on_entry(ev)
                self.applied = ev.index
                self._since_entries += 1
                self._cond.notify_all()
            if self._snapshot_due():
                self._save_snapshot()

    def _snapshot_due(self) -> bool:
        if self._snapshot is None:
            return False
        return bool((self.every_entries and self._since_entries >= self.every_entries) or
                    (self.every_bytes and self._since_bytes >= self.every_bytes))

    def _save_snapshot(self) -> None:
        self._since_entries = self._since_bytes = 0
        with self.lock:
            index = self.applied
            if index <= self.node_snapshot:
                return  # the node has one at or above it (a replay): nothing to add
            blob = self._snapshot()
        try:
            covered = self._stream.snapshot(index, blob)
        except ConnectionLost:
            raise
        except RaftdError as e:
            log.warning("%s: snapshot at %d not saved: %s", self.name, index, e)
            return
        self.node_snapshot = max(self.node_snapshot, covered)
        self.snapshots_saved += 1
