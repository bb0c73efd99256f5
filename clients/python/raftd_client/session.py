"""Exactly-once proposals: a client session (docs/protocol.md, `propose` with `client`/`seq`).

A Session picks a random 64-bit client id once and numbers its proposals 1, 2, 3, ...
`propose_once(data)` sends the proposal with its (client, seq) key and, while the outcome
is unknown or the cluster is unavailable, sends the very same key again (reconnecting,
trying the next socket) until raftd answers ok or the deadline passes. raftd commits a
given key at most once and answers a retry with the original index and term
(`Proposed.duplicate` is then True), so retrying is safe.

It never retries what raftd reports as not retriable: BAD_REQUEST, TOO_LARGE, and EXPIRED
(raftd no longer remembers the session, so it cannot tell whether the key committed and a
retry would not be recognised: the caller must look at its state, as for INDETERMINATE).

This needs a raftd with client sessions; against an older one a retry after INDETERMINATE
could commit twice. Owns: one Client at a time (made from the socket paths given, or the
Client handed in). Never: retries with a new key, or reorders one session's proposals.
"""
import secrets
import threading
import time
from typing import Callable, List, Optional, Sequence, Union

from . import Client, ConnectionLost, Proposed, RaftdError, UNKNOWN_OUTCOME

# Codes after which the same key is sent again. UNAVAILABLE/BUSY: not appended; the others:
# maybe appended (the key makes a second append impossible).
RETRY_CODES = frozenset({"UNAVAILABLE", "BUSY", "INDETERMINATE", "SHUTTING_DOWN",
                         "CONNECTION", "TIMEOUT"})


class Session:
    """One exactly-once session. `sockets`: one path or several (a new connection tries them
    in turn); or `client`: an existing Client (then a lost connection is final). `deadline`:
    the default seconds propose_once() keeps retrying; `attempt_timeout`: the client-side
    deadline of each attempt. One session's proposals are sent one at a time (a lock), so
    their seqs reach raftd in order; use one Session per thread for parallelism."""

    def __init__(self, sockets: Union[str, Sequence[str], None] = None, *,
                 client: Optional[Client] = None, client_id: Optional[int] = None,
                 deadline: float = 30.0, attempt_timeout: float = 5.0,
                 backoff: float = 0.02, max_backoff: float = 0.5,
                 connect: Optional[Callable[[str], Client]] = None):
        if isinstance(sockets, str):
            sockets = [sockets]
        self.sockets: List[str] = list(sockets or [])
        if not self.sockets and client is None:
            raise ValueError("Session needs socket paths or a Client")
        self.client_id = client_id or (secrets.randbits(64) or 1)
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._connect = connect or (lambda path: Client(path))
        self._client = client
        self._own_client = client is None
        self._next_socket = 0
        self._seq = 0
        self._lock = threading.Lock()
        self.attempts = 0          # proposals sent, retries included (for tests and metrics)

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _conn(self) -> Client:
        c = self._client
        if c is not None and c.broken is None:
            return c
        if not self._own_client:
            raise c.broken if c is not None else ConnectionLost("no client")
        if c is not None:
            c.close()
        self._client = None
        path = self.sockets[self._next_socket % len(self.sockets)]
        self._next_socket += 1
        self._client = self._connect(path)
        return self._client

    def propose_once(self, data: Union[bytes, str], deadline: Optional[float] = None) -> Proposed:
        """Commits `data` exactly once under this session's next seq; returns its index and
        term. Raises the last RaftdError when the deadline passes (code INDETERMINATE if any
        attempt may have committed, else the last code: definitely not committed), EXPIRED,
        or a non-retriable error at once."""
        with self._lock:
            self._seq += 1
            return self.retry(data, self._seq, deadline)

    def retry(self, data: Union[bytes, str], seq: int,
              deadline: Optional[float] = None) -> Proposed:
        """Sends (client_id, seq) until ok or the deadline; see propose_once()."""
        end = time.monotonic() + (self.deadline if deadline is None else deadline)
        pause = self.backoff
        maybe = False
        last: Optional[RaftdError] = None
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                c = self._conn()
                self.attempts += 1
                return c.propose(data, client=self.client_id, seq=seq,
                                 timeout=min(self.attempt_timeout, left),
                                 timeout_ms=max(1, int(left * 1000)))
            except RaftdError as e:
                last = e
                if e.code not in RETRY_CODES:
                    raise
                # ConnectionLost on connect sent nothing; after a send it may have committed.
                maybe = maybe or (e.code in UNKNOWN_OUTCOME and not _refused(e))
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(pause * 2, self.max_backoff)
        if last is None:
            last = RaftdError("UNAVAILABLE", "no attempt before the deadline", local=True)
        if maybe and last.code not in UNKNOWN_OUTCOME:
            raise RaftdError("INDETERMINATE", f"gave up after {self.attempts} attempts; an "
                             f"earlier one may have committed (last: {last})", local=True)
        raise last


def _refused(e: RaftdError) -> bool:
    """A connection that could not even be opened: nothing was sent."""
    return isinstance(e, ConnectionLost) and e.message.startswith("cannot connect")
