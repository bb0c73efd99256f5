#include "raft/quorum.h"

#include <algorithm>

namespace raftd::raft {

uint64_t majority_value(const std::vector<NodeId>& voters, const ValueOf& value) {
    if (voters.empty()) return UINT64_MAX;
    std::vector<uint64_t> vals;
    vals.reserve(voters.size());
    for (NodeId id : voters)
        vals.push_back(value(id));
    std::sort(vals.begin(), vals.end(), std::greater<>());
    // With n voters, n/2 + 1 of them hold at least vals[n/2] (sorted descending).
    return vals[voters.size() / 2];
}

uint64_t joint_value(const std::vector<NodeId>& incoming, const std::vector<NodeId>& outgoing,
                     const ValueOf& value) {
    return std::min(majority_value(incoming, value), majority_value(outgoing, value));
}

VoteResult majority_vote(const std::vector<NodeId>& voters, const std::map<NodeId, bool>& votes) {
    if (voters.empty()) return VoteResult::kWon;
    size_t granted = 0, missing = 0;
    for (NodeId id : voters) {
        auto it = votes.find(id);
        if (it == votes.end()) {
            ++missing;
        } else if (it->second) {
            ++granted;
        }
    }
    size_t q = voters.size() / 2 + 1;
    if (granted >= q) return VoteResult::kWon;
    if (granted + missing >= q) return VoteResult::kPending;
    return VoteResult::kLost;
}

VoteResult joint_vote(const std::vector<NodeId>& incoming, const std::vector<NodeId>& outgoing,
                      const std::map<NodeId, bool>& votes) {
    VoteResult a = majority_vote(incoming, votes);
    VoteResult b = majority_vote(outgoing, votes);
    if (a == b) return a;
    if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
    return VoteResult::kPending;
}

}  // namespace raftd::raft
