// Quorum arithmetic for majority and joint configurations (thesis 4.3): which index a quorum
// has reached, and whether an election is won, lost or still open.
//
// Owns: pure functions over sets of voter ids.
// Never: state; it only counts.
// Thread rules: none (pure).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "raft/types.h"

namespace raftd::raft {

enum class VoteResult { kPending, kLost, kWon };

// Values per voter (match index, acknowledged round, lease tick); missing voters count as 0.
using ValueOf = std::function<uint64_t(NodeId)>;

// The largest v such that a majority of `voters` have a value >= v. An empty configuration
// returns UINT64_MAX so that it never constrains a joint configuration.
uint64_t majority_value(const std::vector<NodeId>& voters, const ValueOf& value);
// Joint: both halves must reach it.
uint64_t joint_value(const std::vector<NodeId>& incoming, const std::vector<NodeId>& outgoing,
                     const ValueOf& value);

// votes: id -> granted. An empty configuration wins (it needs nobody).
VoteResult majority_vote(const std::vector<NodeId>& voters, const std::map<NodeId, bool>& votes);
VoteResult joint_vote(const std::vector<NodeId>& incoming, const std::vector<NodeId>& outgoing,
                      const std::map<NodeId, bool>& votes);

}  // namespace raftd::raft
