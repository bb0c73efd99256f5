// Subscriptions: the commit streams of one connection (docs/protocol.md, `subscribe`). Each
// stream sends, in index order, the committed entries from its start; when its next index was
// compacted away it first sends the latest snapshot in chunks and continues after it.
//
// Owns: every stream's cursor (the next index, or the snapshot and offset being sent).
// Never: touch a socket or the connection: it only encodes events into the OutBuffer it is
// given; read ahead while `output_bytes` or more are queued (the caller's output plus what
// it has in flight), so a slow subscriber costs bounded memory; skip or repeat an index.
//
// Thread rules: loop thread only, like the Backend it reads. Unit-tested without sockets
// (subscription_test.cpp) against ipc/testing/fake_backend.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "ipc/backend.h"
#include "ipc/frame.h"
#include "ipc/protocol.h"
#include "raft/types.h"

namespace raftd::ipc {

class Subscriptions {
  public:
    struct Limits {
        uint64_t output_bytes = 1u << 20;            // read on only while less is queued
        uint64_t snapshot_chunk_bytes = 256u << 10;  // largest snapshot event
    };

    Subscriptions(Backend& backend, Limits limits) : backend_(backend), limits_(limits) {}

    // Starts stream `id` at `from` (absent: after the commit index). A `from` beyond the
    // commit index waits for that index, like a subscription that is up to date: it costs
    // its cursor and nothing else until then. Sends nothing: the caller replies, then
    // pump()s.
    void start(uint64_t id, std::optional<raft::Index> from);
    // Ends stream `id` without an event (unsubscribe); false when there is none.
    bool stop(uint64_t id);
    bool contains(uint64_t id) const { return subs_.count(id) != 0; }
    size_t size() const { return subs_.size(); }
    bool empty() const { return subs_.empty(); }
    // Drops every stream without an event (the client or its connection went away).
    void clear() { subs_.clear(); }
    // Ends every stream with an `end` event carrying `why`.
    void end_all(OutBuffer& out, const Error& why);

    // Reads on from the Backend, round-robin over the streams, encoding events into `out`
    // while out.size() + in_flight is below output_bytes. A stream that fails ends with an
    // INTERNAL `end` event. True when something was encoded. Call again when output drained
    // or the commit index advanced.
    bool pump(OutBuffer& out, uint64_t in_flight);

  private:
    struct Stream {
        uint64_t id = 0;
        raft::Index next = 0;  // next entry index to send
        bool in_snapshot = false;
        SnapshotInfo snap;
        uint64_t snap_offset = 0;
    };
    // One read for `s`; true when it produced output or changed state (read on).
    bool pump_one(Stream& s, OutBuffer& out, uint64_t room);
    void end(OutBuffer& out, uint64_t id, const Error& why);

    Backend& backend_;
    Limits limits_;
    std::map<uint64_t, Stream> subs_;
    bool pumping_ = false;
};

}  // namespace raftd::ipc
