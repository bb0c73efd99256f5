// Dispatch: one request frame to its answer (docs/protocol.md 4-6). Parses and validates the
// frame, refuses an id already in use on the connection or a request beyond max_inflight,
// then answers at once (hello, ping, status, members, unsubscribe), starts a stream, feeds
// an upload, or calls the Backend with a completion that replies when it runs.
//
// Owns: nothing; the connection holds the in-flight ids, streams and upload it updates.
// Never: make a Raft decision, block, touch the socket (the connection writes the output),
// or answer a request twice.
//
// Thread rules: loop thread only.
#pragma once

#include "ipc/frame.h"

namespace raftd::ipc {

class Connection;

// Handles one whole frame that arrived on `c`.
void dispatch(Connection& c, const Frame& f);

}  // namespace raftd::ipc
