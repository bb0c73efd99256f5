#include "raft/tracker.h"

#include <algorithm>

#include "raft/confchange.h"

namespace raftd::raft {

void Tracker::set_conf(const ConfState& cs, Index next_index) {
    conf_ = cs;
    std::vector<NodeId> members = all_members(cs);
    for (auto it = progress_.begin(); it != progress_.end();) {
        if (std::find(members.begin(), members.end(), it->first) == members.end()) {
            it = progress_.erase(it);
        } else {
            ++it;
        }
    }
    for (NodeId id : members) {
        bool learner = !raft::is_voter(cs, id);
        auto it = progress_.find(id);
        if (it == progress_.end()) {
            Progress pr(next_index, max_inflight_, max_inflight_bytes_, learner);
            // A new member counts as active so that adding one does not make a leader with
            // check-quorum step down before the newcomer had a chance to answer.
            pr.recent_active = true;
            progress_.emplace(id, std::move(pr));
        } else {
            it->second.is_learner = learner;
        }
    }
}

Progress* Tracker::find(NodeId id) {
    auto it = progress_.find(id);
    return it == progress_.end() ? nullptr : &it->second;
}

const Progress* Tracker::find(NodeId id) const {
    auto it = progress_.find(id);
    return it == progress_.end() ? nullptr : &it->second;
}

void Tracker::reset_progress(Index next_index) {
    for (auto& [id, pr] : progress_) {
        bool learner = pr.is_learner;
        pr = Progress(next_index, max_inflight_, max_inflight_bytes_, learner);
    }
}

bool Tracker::is_voter(NodeId id) const {
    return raft::is_voter(conf_, id);
}

std::vector<NodeId> Tracker::voters() const {
    std::vector<NodeId> v = conf_.voters;
    v.insert(v.end(), conf_.voters_outgoing.begin(), conf_.voters_outgoing.end());
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

bool Tracker::is_singleton() const {
    return conf_.voters.size() == 1 && !conf_.joint();
}

Index Tracker::committed() const {
    return quorum_value([this](NodeId id) -> uint64_t {
        const Progress* pr = find(id);
        return pr ? pr->match : 0;
    });
}

uint64_t Tracker::quorum_value(const ValueOf& value) const {
    return joint_value(conf_.voters, conf_.voters_outgoing, value);
}

bool Tracker::quorum_active() const {
    std::map<NodeId, bool> active;
    for (const auto& [id, pr] : progress_) {
        if (!pr.is_learner) active[id] = pr.recent_active;
    }
    return joint_vote(conf_.voters, conf_.voters_outgoing, active) == VoteResult::kWon;
}

void Tracker::record_vote(NodeId id, bool granted) {
    votes_.emplace(id, granted);
}

VoteResult Tracker::tally() const {
    return joint_vote(conf_.voters, conf_.voters_outgoing, votes_);
}

}  // namespace raftd::raft
