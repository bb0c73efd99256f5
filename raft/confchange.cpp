#include "raft/confchange.h"

#include <algorithm>
#include <set>

namespace raftd::raft {

namespace {

bool contains(const std::vector<NodeId>& v, NodeId id) {
    return std::find(v.begin(), v.end(), id) != v.end();
}
void erase(std::vector<NodeId>& v, NodeId id) {
    v.erase(std::remove(v.begin(), v.end(), id), v.end());
}
void insert(std::vector<NodeId>& v, NodeId id) {
    if (!contains(v, id)) v.push_back(id);
}
void normalize(ConfState& cs) {
    for (auto* v : {&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next}) {
        std::sort(v->begin(), v->end());
        v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    // Keep addresses only of nodes still named, sorted by id.
    std::vector<Member> kept;
    for (const Member& m : cs.addrs) {
        if (!is_member(cs, m.id)) continue;
        auto it =
            std::find_if(kept.begin(), kept.end(), [&](const Member& k) { return k.id == m.id; });
        if (it == kept.end()) kept.push_back(m);
    }
    std::sort(kept.begin(), kept.end(),
              [](const Member& a, const Member& b) { return a.id < b.id; });
    cs.addrs = std::move(kept);
}
void set_addr(ConfState& cs, NodeId id, const std::string& addr) {
    if (addr.empty()) return;
    for (Member& m : cs.addrs) {
        if (m.id == id) {
            m.addr = addr;
            return;
        }
    }
    cs.addrs.push_back({id, addr});
}

Status apply_changes(ConfState& cs, const std::vector<ConfChangeSingle>& changes) {
    for (const auto& c : changes) {
        if (c.node == kNoNode) return Status::invalid_argument("conf change: node id 0");
        if (c.type != ConfChangeType::kAddNode && c.type != ConfChangeType::kAddLearner &&
            c.type != ConfChangeType::kRemoveNode)
            return Status::invalid_argument("conf change: unknown change type");
        // Each change takes the node out of every incoming role, then gives it its new one (a
        // voter of the outgoing half keeps voting until the joint state is left).
        erase(cs.voters, c.node);
        erase(cs.learners, c.node);
        erase(cs.learners_next, c.node);
        if (c.type == ConfChangeType::kAddNode) {
            insert(cs.voters, c.node);
        } else if (c.type == ConfChangeType::kAddLearner) {
            insert(contains(cs.voters_outgoing, c.node) ? cs.learners_next : cs.learners, c.node);
        }
        if (c.type != ConfChangeType::kRemoveNode) set_addr(cs, c.node, c.addr);
    }
    return Status::ok();
}

Status check_invariants(const ConfState& cs) {
    if (cs.voters.empty()) return Status::invalid_argument("conf change: no voters would remain");
    for (NodeId l : cs.learners) {
        if (contains(cs.voters, l) || contains(cs.voters_outgoing, l)) {
            return Status::internal("conf change: " + std::to_string(l) + " is voter and learner");
        }
    }
    for (NodeId l : cs.learners_next) {
        if (!contains(cs.voters_outgoing, l)) {
            return Status::internal("conf change: learner-to-be " + std::to_string(l) +
                                    " is not an outgoing voter");
        }
    }
    if (!cs.joint() && (!cs.learners_next.empty() || cs.auto_leave)) {
        return Status::internal("conf change: joint fields set outside a joint configuration");
    }
    return Status::ok();
}

size_t voter_changes(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
    size_t n = 0;
    for (NodeId id : a)
        n += !contains(b, id);
    for (NodeId id : b)
        n += !contains(a, id);
    return n;
}

}  // namespace

Result<ConfState> apply_conf_change(const ConfState& cur, const ConfChange& cc) {
    ConfState next = cur;
    if (cc.is_leave_joint()) {
        if (!cur.joint())
            return Status::invalid_argument("conf change: not in a joint configuration");
        next.voters_outgoing.clear();
        for (NodeId id : next.learners_next)
            insert(next.learners, id);
        next.learners_next.clear();
        next.auto_leave = false;
    } else if (cc.enters_joint() &&
               !(cc.transition == ConfTransition::kAuto && cur.voters.empty())) {
        if (cur.joint())
            return Status::invalid_argument("conf change: already in a joint configuration");
        if (cur.voters.empty()) {
            return Status::invalid_argument(
                "conf change: cannot enter a joint configuration without voters");
        }
        next.voters_outgoing = cur.voters;
        Status st = apply_changes(next, cc.changes);
        if (!st) return st;
        next.auto_leave = cc.transition != ConfTransition::kJointExplicit;
    } else {
        if (cur.joint())
            return Status::invalid_argument("conf change: already in a joint configuration");
        Status st = apply_changes(next, cc.changes);
        if (!st) return st;
        // One voter at a time keeps every old majority overlapping every new one; a cluster
        // with no voters yet has no majority to overlap.
        if (!cur.voters.empty() && voter_changes(cur.voters, next.voters) > 1) {
            return Status::invalid_argument(
                "conf change: more than one voter changed without a joint configuration");
        }
    }
    normalize(next);
    Status st = check_invariants(next);
    if (!st) return st;
    return next;
}

bool is_voter(const ConfState& cs, NodeId id) {
    return contains(cs.voters, id) || contains(cs.voters_outgoing, id);
}

bool is_member(const ConfState& cs, NodeId id) {
    return is_voter(cs, id) || contains(cs.learners, id) || contains(cs.learners_next, id);
}

std::vector<NodeId> all_members(const ConfState& cs) {
    std::set<NodeId> s;
    for (auto* v : {&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next}) {
        s.insert(v->begin(), v->end());
    }
    return {s.begin(), s.end()};
}

std::string address_of(const ConfState& cs, NodeId id) {
    for (const Member& m : cs.addrs) {
        if (m.id == id) return m.addr;
    }
    return {};
}

namespace {
std::string ids(const std::vector<NodeId>& v) {
    std::string s = "(";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += " ";
        s += std::to_string(v[i]);
    }
    return s + ")";
}
}  // namespace

std::string describe(const ConfState& cs) {
    std::string s = "voters=" + ids(cs.voters);
    if (cs.joint()) s += "&&" + ids(cs.voters_outgoing);
    if (!cs.learners.empty()) s += " learners=" + ids(cs.learners);
    if (!cs.learners_next.empty()) s += " learners_next=" + ids(cs.learners_next);
    if (cs.auto_leave) s += " autoleave";
    return s;
}

std::string describe(const ConfChange& cc) {
    if (cc.is_leave_joint()) return "leave-joint";
    std::string s;
    for (const auto& c : cc.changes) {
        if (!s.empty()) s += " ";
        switch (c.type) {
            case ConfChangeType::kAddNode:
                s += "v";
                break;
            case ConfChangeType::kAddLearner:
                s += "l";
                break;
            case ConfChangeType::kRemoveNode:
                s += "r";
                break;
        }
        s += std::to_string(c.node);
    }
    if (cc.transition == ConfTransition::kJointImplicit) s += " (joint)";
    if (cc.transition == ConfTransition::kJointExplicit) s += " (joint explicit)";
    return s;
}

}  // namespace raftd::raft
