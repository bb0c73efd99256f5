// Progress: the leader's knowledge of one follower's log and the flow control towards it.
//
// Owns: match/next indexes, the probe/replicate/snapshot state machine, the inflight window
// (by message count and by bytes) and the InstallSnapshot transfer position.
// Never: sends anything itself; raft decides what to send from what this allows.
// Thread rules: single-threaded, owned by the leader's Tracker.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "raft/types.h"

namespace raftd::raft {

// Appends in flight to one follower, each remembered by its last index and byte size, so an
// acknowledgement up to index i frees every message ending at or before i.
class Inflights {
  public:
    Inflights(uint64_t max_count, uint64_t max_bytes)
        : max_count_(max_count), max_bytes_(max_bytes) {}
    void add(Index last, uint64_t bytes);
    void free_le(Index i);
    // Frees the oldest slot: when a full window's appends were all lost, nothing would ever
    // be acknowledged to free one, and replication would stall for good.
    void free_first_one();
    void reset();
    bool full() const;
    size_t count() const { return q_.size(); }
    uint64_t bytes() const { return bytes_; }

  private:
    struct Item {
        Index last;
        uint64_t bytes;
    };
    uint64_t max_count_;
    uint64_t max_bytes_;  // 0 = unlimited
    std::deque<Item> q_;
    uint64_t bytes_ = 0;
};

enum class ProgressState : uint8_t {
    kProbe,      // one AppendEntries per heartbeat until the match point is found
    kReplicate,  // optimistic pipelining within the inflight window
    kSnapshot,   // the follower needs compacted entries: InstallSnapshot chunks, one at a time
};
std::string_view progress_state_name(ProgressState s);

struct Progress {
    Progress(Index next_index, uint64_t max_inflight, uint64_t max_inflight_bytes, bool learner)
        : next(next_index), is_learner(learner), inflights(max_inflight, max_inflight_bytes) {}

    Index match = 0;
    Index next = 1;
    ProgressState state = ProgressState::kProbe;
    bool probe_sent = false;       // kProbe: an append is out; wait for its answer or a heartbeat
    Index pending_snapshot = 0;    // kSnapshot: index of the snapshot being sent
    uint64_t snapshot_offset = 0;  // kSnapshot: next byte the follower wants
    bool chunk_in_flight = false;  // kSnapshot: a chunk is out and unanswered
    bool recent_active = false;    // heard from within the current check-quorum window
    bool is_learner = false;
    Inflights inflights;
    uint64_t read_round = 0;  // highest heartbeat round acknowledged (ReadIndex)
    uint64_t lease_tick = 0;  // leader tick at which the latest acknowledged round was sent

    void become_probe();
    void become_replicate();
    void become_snapshot(Index snapshot_index);
    // An acknowledgement of index n; false when it tells nothing new.
    bool maybe_update(Index n);
    // A rejection of the append after `rejected`; the follower's log may match at or below
    // match_hint. False when the rejection is stale.
    bool maybe_decrease_to(Index rejected, Index match_hint);
    // Whether an append may be sent now.
    bool is_paused() const;
    // Record an append of `count` entries ending at `last` carrying `bytes`.
    void sent_entries(Index last, size_t count, uint64_t bytes);

    std::string describe() const;
};

}  // namespace raftd::raft
