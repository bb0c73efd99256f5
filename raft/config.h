// Config: the tunables of one raft node, and the seeded generator behind its election jitter.
//
// Owns: plain values and their validation. Time is counted in ticks (the caller decides how
// long a tick is); randomness comes only from `seed`, so the same inputs replay exactly.
// Never: read the environment, a clock or a global generator.
// Thread rules: plain data.
#pragma once

#include <cstdint>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::raft {

struct Config {
    NodeId id = kNoNode;

    // A follower that hears nothing for a random number of ticks in
    // [election_tick, 2 * election_tick) campaigns. The leader sends heartbeats every
    // heartbeat_tick ticks. election_tick must exceed heartbeat_tick.
    int election_tick = 10;
    int heartbeat_tick = 1;

    // Campaign first with a pre-vote round that changes no term (thesis 9.6): a node that was
    // partitioned away does not disturb a healthy leader when it comes back.
    bool pre_vote = true;
    // The leader steps down when it has not heard from a quorum for election_tick ticks, and
    // followers that heard from a leader within election_tick ticks ignore vote requests.
    bool check_quorum = true;
    // Serve ReadIndex from the leader's lease instead of a heartbeat round. Relies on
    // check_quorum on every node and on tick rates that drift less than one tick per election
    // timeout; off by default.
    bool lease_read = false;

    // Flow control towards each follower.
    uint64_t max_inflight_msgs = 256;     // AppendEntries in flight per follower (>= 1)
    uint64_t max_inflight_bytes = 0;      // their entry bytes; 0 = unlimited
    uint64_t max_size_per_msg = 1 << 20;  // entry bytes per AppendEntries (at least one entry)
    // Proposals are refused with kBusy while the leader's uncommitted entry bytes exceed
    // this; 0 = unlimited.
    uint64_t max_uncommitted_bytes = 0;
    // New entries and commit advances are broadcast once per Ready instead of at once: a
    // burst of proposals (or both followers' acks) then costs one AppendEntries per follower
    // instead of one per proposal. Off, every proposal goes out by itself (the tests that
    // step through single messages turn it off).
    bool batch_appends = true;
    // A follower known to be caught up gets commit notices (AppendEntries without entries)
    // marked quiet and does not answer them: a message and a wake-up fewer per commit on
    // each side. Off, every append is answered (the step-by-step tests turn it off).
    bool quiet_commit_notices = true;
    // Bytes of committed entries handed out per Ready (at least one entry); 0 = unlimited.
    uint64_t max_committed_bytes_per_ready = 0;
    // Bytes of snapshot data per InstallSnapshot chunk.
    uint64_t max_snapshot_chunk_bytes = 1 << 20;

    // The last index the caller already applied before this start (committed entries after it
    // are handed out again). 0 = start from the snapshot.
    Index applied = 0;

    // Seed of the election-timeout jitter.
    uint64_t seed = 1;

    Status validate() const;
};

// splitmix64: tiny, deterministic on every platform and standard library (std::
// distributions are not), which is what replayable simulations need.
class Rng {
  public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [lo, hi); hi > lo. The modulo bias is irrelevant for the small ranges used.
    uint64_t uniform(uint64_t lo, uint64_t hi) { return lo + next() % (hi - lo); }
    bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

  private:
    uint64_t state_;
};

}  // namespace raftd::raft
