// Membership requests as values: see membership.h.
#include "daemon/membership.h"

#include <algorithm>
#include <string>

namespace raftd::daemon {

namespace {

using ipc::Error;
using ipc::ErrorCode;

bool contains(const std::vector<raft::NodeId>& v, raft::NodeId id) {
    return std::find(v.begin(), v.end(), id) != v.end();
}

Error bad(std::string why) {
    return Error{ErrorCode::kBadRequest, std::move(why), std::nullopt};
}

std::string node_str(raft::NodeId id) {
    return "node " + std::to_string(id);
}

raft::ConfChangeSingle add(raft::NodeId node, const std::string& addr, bool learner) {
    return {learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddNode, node,
            addr};
}

}  // namespace

ipc::Outcome<MemberPlan> plan_member_change(const raft::ConfState& cs,
                                            const ipc::MemberChange& req) {
    MemberPlan plan;
    raft::ConfChange& cc = plan.change;
    bool leave_joint = false;
    if (auto* a = std::get_if<ipc::AddMemberRequest>(&req)) {
        if (raft::is_member(cs, a->node)) return bad(node_str(a->node) + " is already a member");
        cc.changes.push_back(add(a->node, a->addr, a->learner));
    } else if (auto* r = std::get_if<ipc::RemoveMemberRequest>(&req)) {
        if (!raft::is_member(cs, r->node)) return bad(node_str(r->node) + " is not a member");
        cc.changes.push_back({raft::ConfChangeType::kRemoveNode, r->node, ""});
    } else if (auto* p = std::get_if<ipc::PromoteRequest>(&req)) {
        if (!raft::is_member(cs, p->node)) return bad(node_str(p->node) + " is not a member");
        if (raft::is_voter(cs, p->node)) return bad(node_str(p->node) + " is already a voter");
        cc.changes.push_back({raft::ConfChangeType::kAddNode, p->node, ""});
    } else if (auto* d = std::get_if<ipc::DemoteRequest>(&req)) {
        if (!raft::is_member(cs, d->node)) return bad(node_str(d->node) + " is not a member");
        if (!raft::is_voter(cs, d->node)) return bad(node_str(d->node) + " is not a voter");
        cc.changes.push_back({raft::ConfChangeType::kAddLearner, d->node, ""});
        leave_joint = true;  // demoting a voter goes through a joint configuration
    } else if (auto* c = std::get_if<ipc::ChangeMembersRequest>(&req)) {
        for (const auto& m : c->add) {
            if (raft::is_member(cs, m.node)) return bad(node_str(m.node) + " is already a member");
            cc.changes.push_back(add(m.node, m.addr, m.learner));
        }
        for (raft::NodeId id : c->remove) {
            if (!raft::is_member(cs, id)) return bad(node_str(id) + " is not a member");
            cc.changes.push_back({raft::ConfChangeType::kRemoveNode, id, ""});
        }
        if (cc.changes.empty()) return bad("nothing to change");
        cc.transition = raft::ConfTransition::kJointImplicit;
        leave_joint = true;
    }
    plan.wait_leave_joint = leave_joint || cc.enters_joint();
    return plan;
}

ipc::Membership to_membership(const raft::ConfState& cs, const raft::NodeStatus* progress) {
    ipc::Membership m;
    m.joint = cs.joint();
    for (raft::NodeId id : raft::all_members(cs)) {
        ipc::MemberInfo mi;
        mi.node = id;
        mi.addr = raft::address_of(cs, id);
        mi.voter = contains(cs.voters, id);
        mi.outgoing = contains(cs.voters_outgoing, id);
        if (progress) {
            auto it = progress->progress.find(id);
            if (it != progress->progress.end())
                mi.progress =
                    ipc::Progress{it->second.match, it->second.next,
                                  std::string(raft::progress_state_name(it->second.state))};
        }
        m.members.push_back(std::move(mi));
    }
    return m;
}

Result<ipc::Membership> parse_membership_reply(std::string_view body) {
    auto f = ipc::decode_frame_body(body);
    if (!f) return f.status();
    return ipc::decode_membership(f->root());
}

}  // namespace raftd::daemon
