#include "daemon/membership.h"

#include <doctest/doctest.h>

#include "ipc/frame.h"
#include "ipc/protocol.h"

using namespace raftd;
using namespace raftd::daemon;
using raft::ConfChangeType;

namespace {

// Voters 1 and 2, learner 3.
raft::ConfState three() {
    raft::ConfState cs;
    cs.voters = {1, 2};
    cs.learners = {3};
    cs.addrs = {{1, "h1:1"}, {2, "h2:1"}, {3, "h3:1"}};
    return cs;
}

MemberPlan plan(const ipc::MemberChange& req) {
    auto p = plan_member_change(three(), req);
    REQUIRE_MESSAGE(p.ok(), p.error().message);
    return p.value();
}

std::string refusal(const ipc::MemberChange& req) {
    auto p = plan_member_change(three(), req);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == ipc::ErrorCode::kBadRequest);
    return p.error().message;
}

}  // namespace

TEST_CASE("add_member proposes one voter or learner, applied directly") {
    MemberPlan p = plan(ipc::AddMemberRequest{4, "h4:1", false});
    CHECK(p.change ==
          raft::ConfChange{raft::ConfTransition::kAuto, {{ConfChangeType::kAddNode, 4, "h4:1"}}});
    CHECK_FALSE(p.wait_leave_joint);
    p = plan(ipc::AddMemberRequest{4, "h4:1", true});
    CHECK(p.change.changes ==
          std::vector<raft::ConfChangeSingle>{{ConfChangeType::kAddLearner, 4, "h4:1"}});
    CHECK(refusal(ipc::AddMemberRequest{2, "x:1", false}) == "node 2 is already a member");
}

TEST_CASE("remove_member and promote need a member; promote needs a learner") {
    CHECK(plan(ipc::RemoveMemberRequest{3}).change.changes ==
          std::vector<raft::ConfChangeSingle>{{ConfChangeType::kRemoveNode, 3, ""}});
    CHECK(refusal(ipc::RemoveMemberRequest{9}) == "node 9 is not a member");
    MemberPlan p = plan(ipc::PromoteRequest{3});
    CHECK(p.change.changes ==
          std::vector<raft::ConfChangeSingle>{{ConfChangeType::kAddNode, 3, ""}});
    CHECK_FALSE(p.wait_leave_joint);
    CHECK(refusal(ipc::PromoteRequest{9}) == "node 9 is not a member");
    CHECK(refusal(ipc::PromoteRequest{1}) == "node 1 is already a voter");
}

TEST_CASE("demote turns a voter into a learner and waits for the joint state to be left") {
    MemberPlan p = plan(ipc::DemoteRequest{2});
    CHECK(p.change.changes ==
          std::vector<raft::ConfChangeSingle>{{ConfChangeType::kAddLearner, 2, ""}});
    CHECK(p.wait_leave_joint);
    CHECK(refusal(ipc::DemoteRequest{3}) == "node 3 is not a voter");
    CHECK(refusal(ipc::DemoteRequest{9}) == "node 9 is not a member");
}

TEST_CASE("change_members goes through a joint configuration, adds before removes") {
    ipc::ChangeMembersRequest req;
    req.add = {{4, "h4:1", false}, {5, "h5:1", true}};
    req.remove = {1};
    MemberPlan p = plan(req);
    CHECK(p.change.transition == raft::ConfTransition::kJointImplicit);
    CHECK(p.change.changes ==
          std::vector<raft::ConfChangeSingle>{{ConfChangeType::kAddNode, 4, "h4:1"},
                                              {ConfChangeType::kAddLearner, 5, "h5:1"},
                                              {ConfChangeType::kRemoveNode, 1, ""}});
    CHECK(p.wait_leave_joint);
    CHECK(refusal(ipc::ChangeMembersRequest{}) == "nothing to change");
    CHECK(refusal(ipc::ChangeMembersRequest{{{3, "", false}}, {}}) == "node 3 is already a member");
    CHECK(refusal(ipc::ChangeMembersRequest{{}, {7}}) == "node 7 is not a member");
}

TEST_CASE("a membership reply survives the trip through a forwarded request's reply map") {
    raft::ConfState cs = three();
    cs.voters_outgoing = {1};
    ipc::Membership m = to_membership(cs);
    CHECK(m.joint);
    REQUIRE(m.members.size() == 3);
    CHECK(m.members[0] == ipc::MemberInfo{1, "h1:1", true, true, std::nullopt});
    CHECK(m.members[2] == ipc::MemberInfo{3, "h3:1", false, false, std::nullopt});
    ipc::OutBuffer out;
    ipc::encode_reply(out, 0, m);
    auto back = parse_membership_reply(out.flatten().substr(ipc::kFrameHeaderSize));
    REQUIRE(back);
    CHECK(*back == m);
    CHECK_FALSE(parse_membership_reply(std::string_view("\x80", 1)));  // {} has no members
}
