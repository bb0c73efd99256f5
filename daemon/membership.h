// Membership requests as values: a client's membership request (docs/protocol.md 4.2) checked
// against the current configuration and turned into the raft ConfChange to propose, and the
// configuration as clients see it.
//
// Owns: the request -> ConfChange rules (what is refused as BAD_REQUEST, which changes go
// through a joint configuration and whether the reply waits for it to be left), and the
// members/joint map of replies.
// Never: propose anything, or look at the node beyond the values passed in; raft itself
// still validates the change when it is proposed and applied.
//
// Thread rules: pure functions.
#pragma once

#include <string_view>

#include "ipc/backend.h"
#include "raft/confchange.h"
#include "raft/node.h"
#include "raft/status.h"

namespace raftd::daemon {

struct MemberPlan {
    raft::ConfChange change;
    // The reply waits until the configuration is no longer joint (a demotion or a joint
    // change is answered once the cluster has left the joint configuration).
    bool wait_leave_joint = false;
};

// The change `req` asks for, given the configuration `cs`; BAD_REQUEST naming the node when
// it does not fit (unknown node, already a member, already a voter, nothing to change).
ipc::Outcome<MemberPlan> plan_member_change(const raft::ConfState& cs,
                                            const ipc::MemberChange& req);

// The configuration `cs` as clients see it; each member's replication progress from
// `progress` when given (the leader's status).
ipc::Membership to_membership(const raft::ConfState& cs,
                              const raft::NodeStatus* progress = nullptr);

// A `members` reply map (docs/protocol.md 4) back into a Membership: what a leader answered
// a forwarded membership request with.
Result<ipc::Membership> parse_membership_reply(std::string_view body);

}  // namespace raftd::daemon
