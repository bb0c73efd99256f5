// Tracker: the active configuration, the leader's Progress for every member, and the votes
// of the current election, with the quorum questions asked of them.
//
// Owns: one Progress per member (voters of both halves and learners), the vote tally.
// Never: decides what to send; raft asks it.
// Thread rules: single-threaded, owned by one Raft.
#pragma once

#include <map>
#include <vector>

#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/types.h"

namespace raftd::raft {

class Tracker {
  public:
    Tracker(uint64_t max_inflight, uint64_t max_inflight_bytes)
        : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

    const ConfState& conf() const { return conf_; }
    // Switches to cs: members that left lose their Progress, new members get one starting at
    // next_index, learners are flagged.
    void set_conf(const ConfState& cs, Index next_index);

    std::map<NodeId, Progress>& progress() { return progress_; }
    const std::map<NodeId, Progress>& progress() const { return progress_; }
    Progress* find(NodeId id);
    const Progress* find(NodeId id) const;
    // Fresh progress for every member (a new term): match 0, next as given, probing.
    void reset_progress(Index next_index);

    bool is_voter(NodeId id) const;
    // Voters of both halves, sorted, without duplicates.
    std::vector<NodeId> voters() const;
    bool is_singleton() const;  // exactly one voter and not joint

    // The index a quorum of voters have matched.
    Index committed() const;
    // The value a quorum of voters have reached, for any per-voter quantity.
    uint64_t quorum_value(const ValueOf& value) const;
    // Whether voters that were recently active form a quorum.
    bool quorum_active() const;

    void reset_votes() { votes_.clear(); }
    void record_vote(NodeId id, bool granted);
    VoteResult tally() const;

  private:
    uint64_t max_inflight_;
    uint64_t max_inflight_bytes_;
    ConfState conf_;
    std::map<NodeId, Progress> progress_;
    std::map<NodeId, bool> votes_;
};

}  // namespace raftd::raft
