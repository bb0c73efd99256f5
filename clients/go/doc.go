// Package raftd is the Go client of raftd, the Raft sidecar daemon. It speaks only the
// public client protocol (docs/protocol.md): 4-byte big-endian length + one msgpack map per
// frame over raftd's Unix socket.
//
// One *Conn is one connection. It is safe for concurrent use: many goroutines may call it
// at once, and their requests are pipelined on the one socket (a writer goroutine batches
// frames into few writes, a reader goroutine matches replies to callers by id). Requests
// one goroutine sends in sequence reach raftd, and so the Raft log, in that order.
//
// Every call takes a context. When it expires before the request was written, nothing was
// done (the context's error is returned). When it expires after a proposal was written, the
// proposal may still commit: the error is INDETERMINATE (errors.Is(err, ErrIndeterminate))
// and also wraps the context's error. The client never retries a request by itself, because
// a retried proposal could commit twice; use WithSession for exactly-once retries.
//
// Owns: one socket, its reader and writer goroutines, the table of requests in flight and
// the event queues of its subscriptions. Close stops both goroutines and waits for them.
// Never: daemon internals, retries, or unbounded buffering of a subscription that is not
// read (its queue is bounded; a full queue pauses reading from the socket, see Subscribe).
package raftd
