// Paper tests for membership changes: Raft paper section 6 and thesis chapter 4 (joint
// consensus 4.3, learners 4.2.1, removing the leader 4.2.2, disruptive servers 4.2.3).
#include <doctest/doctest.h>

#include "raft/confchange_codec.h"
#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd::raft;
using namespace raftd::raft::testing;

namespace {

ConfChange single(ConfChangeType t, NodeId n) {
    return ConfChange{ConfTransition::kAuto, {{t, n, "n" + std::to_string(n) + ":7000"}}};
}

}  // namespace

TEST_CASE("s6_configuration_change_takes_effect_when_its_entry_is_applied") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4}));
    REQUIRE(c.elect(1));
    auto id = c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddNode, 4));
    REQUIRE(id);
    CHECK(c.peer(1).node().conf_state().voters == std::vector<NodeId>{1, 2, 3});  // appended only
    c.stabilize();
    for (NodeId n : {1, 2, 3, 4}) {
        CAPTURE(n);
        CHECK(c.peer(n).node().conf_state().voters == std::vector<NodeId>{1, 2, 3, 4});
    }
    CHECK(c.peer(4).applied_index() == c.peer(1).applied_index());
}

TEST_CASE("s6_only_one_configuration_change_may_be_pending_at_a_time") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4, 5}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddLearner, 4)));
    auto second = c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddLearner, 5));
    REQUIRE_FALSE(second);
    CHECK(second.status().code() == raftd::Code::kBusy);
    c.stabilize();
    CHECK(c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddLearner, 5)));
}

TEST_CASE("s6_a_change_of_more_than_one_voter_goes_through_a_joint_configuration") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4}));
    REQUIRE(c.elect(1));
    ConfChange cc{ConfTransition::kAuto,
                  {{ConfChangeType::kAddNode, 4, "n4:7000"}, {ConfChangeType::kRemoveNode, 3, ""}}};
    REQUIRE(c.peer(1).node().propose_conf_change(cc));
    // Deliver until the joint configuration is applied on the leader, then look.
    bool saw_joint = false;
    for (int i = 0; i < 50 && !saw_joint; ++i) {
        for (NodeId id : c.ids())
            while (c.process_ready(id)) {
            }
        for (NodeId id : c.ids())
            c.deliver_to(id);
        saw_joint = c.peer(1).node().conf_state().joint();
    }
    REQUIRE(saw_joint);
    CHECK(c.peer(1).node().conf_state().voters == std::vector<NodeId>{1, 2, 4});
    CHECK(c.peer(1).node().conf_state().voters_outgoing == std::vector<NodeId>{1, 2, 3});
    c.stabilize();  // the leader leaves the joint configuration by itself
    CHECK_FALSE(c.peer(1).node().conf_state().joint());
    CHECK(c.peer(1).node().conf_state().voters == std::vector<NodeId>{1, 2, 4});
    CHECK(c.peer(2).node().conf_state() == c.peer(1).node().conf_state());
}

TEST_CASE("s6_explicit_joint_configuration_stays_until_the_leave_is_proposed") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4}));
    REQUIRE(c.elect(1));
    ConfChange cc{ConfTransition::kJointExplicit, {{ConfChangeType::kAddNode, 4, "n4:7000"}}};
    REQUIRE(c.peer(1).node().propose_conf_change(cc));
    c.stabilize();
    c.tick_all(3);
    REQUIRE(c.peer(1).node().conf_state().joint());
    REQUIRE(c.peer(1).node().propose_conf_change(ConfChange{}));
    c.stabilize();
    CHECK_FALSE(c.peer(1).node().conf_state().joint());
    CHECK(c.peer(1).node().conf_state().voters == std::vector<NodeId>{1, 2, 3, 4});
}

TEST_CASE("s6_joint_consensus_commits_only_with_a_majority_of_both_configurations") {
    // Joint (1 2 3) && (1 4 5).
    Fixture f(1, opts().voters({1, 2, 3}).outgoing({1, 4, 5}));
    make_leader(f);
    Term t = f.node().term();
    Index noop = f.raft().log().last_index();
    REQUIRE(f.step(ack(2, 1, t, noop)));
    REQUIRE(f.step(ack(3, 1, t, noop)));
    f.drain();
    CHECK(f.raft().log().committed() == 0);  // (1 2 3) yes, (1 4 5) only 1
    REQUIRE(f.step(ack(4, 1, t, noop)));
    f.drain();
    CHECK(f.raft().log().committed() == noop);
}

TEST_CASE("s6_joint_consensus_elects_only_with_a_majority_of_both_configurations") {
    Fixture f(1, opts().term(1).voters({1, 2, 3}).outgoing({1, 4, 5}));
    REQUIRE(f.node().campaign());
    auto out = f.drain();
    CHECK(filter(out, MessageType::kVote).size() == 4);  // both halves are asked
    REQUIRE(f.step(msg(MessageType::kVoteResponse, 2, 1, 2)));
    REQUIRE(f.step(msg(MessageType::kVoteResponse, 3, 1, 2)));
    CHECK(f.node().role() == Role::kCandidate);
    REQUIRE(f.step(msg(MessageType::kVoteResponse, 5, 1, 2)));
    CHECK(f.node().role() == Role::kLeader);
}

TEST_CASE("s6_joint_consensus_election_is_lost_when_either_half_refuses") {
    Fixture f(1, opts().term(1).voters({1, 2, 3}).outgoing({1, 4, 5}));
    REQUIRE(f.node().campaign());
    f.drain();
    for (NodeId v : {2, 3})
        REQUIRE(f.step(msg(MessageType::kVoteResponse, v, 1, 2)));
    for (NodeId v : {4, 5}) {
        Message r = msg(MessageType::kVoteResponse, v, 1, 2);
        r.reject = true;
        REQUIRE(f.step(r));
    }
    CHECK(f.node().role() == Role::kFollower);
}

TEST_CASE("s4_2_1_learners_do_not_vote_and_are_not_asked") {
    Fixture f(1, opts().term(1).voters({1, 2, 3}).learners({4}));
    REQUIRE(f.node().campaign());
    auto votes = filter(f.drain(), MessageType::kVote);
    for (const Message& m : votes)
        CHECK(m.to != 4);
    // A grant from the learner does not count.
    REQUIRE(f.step(msg(MessageType::kVoteResponse, 4, 1, 2)));
    CHECK(f.node().role() == Role::kCandidate);
}

TEST_CASE("s4_2_1_learners_never_campaign") {
    Fixture f(4, opts().term(1).voters({1, 2, 3}).learners({4}));
    f.tick(100);
    f.drain();
    CHECK(f.node().role() == Role::kFollower);
    CHECK(f.node().term() == 1);
    CHECK_FALSE(f.node().campaign());
}

TEST_CASE("s4_2_1_learner_acknowledgements_do_not_count_toward_commit") {
    Fixture f(1, opts().voters({1, 2, 3}).learners({4}));
    make_leader(f);
    Index noop = f.raft().log().last_index();
    REQUIRE(f.step(ack(4, 1, f.node().term(), noop)));
    f.drain();
    CHECK(f.raft().log().committed() == 0);
    REQUIRE(f.step(ack(2, 1, f.node().term(), noop)));
    f.drain();
    CHECK(f.raft().log().committed() == noop);
}

TEST_CASE("s4_2_1_learners_receive_the_log_and_can_be_promoted") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddLearner, 4)));
    c.stabilize();
    REQUIRE(c.peer(1).node().propose(Payload(std::string("x"))));
    c.stabilize();
    CHECK(c.peer(4).applied().back().data.view() == "x");
    CHECK(c.peer(4).node().conf_state().learners == std::vector<NodeId>{4});
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddNode, 4)));
    c.stabilize();
    CHECK(c.peer(4).node().conf_state().voters == std::vector<NodeId>{1, 2, 3, 4});
    CHECK(c.peer(4).node().conf_state().learners.empty());
    // Now 4 can lead.
    CHECK(c.elect(4));
}

TEST_CASE("s4_2_2_a_removed_leader_keeps_leading_until_the_removal_commits_then_steps_down") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kRemoveNode, 1)));
    // Nothing delivered yet: still the leader.
    c.process_ready(1);
    CHECK(c.peer(1).node().role() == Role::kLeader);
    c.stabilize();
    CHECK(c.peer(1).node().role() == Role::kFollower);
    CHECK(c.peer(2).node().conf_state().voters == std::vector<NodeId>{2, 3});
    // It handed leadership over rather than leaving the cluster leaderless for a timeout.
    NodeId lead = c.leader();
    CHECK((lead == 2 || lead == 3));
    REQUIRE(lead != kNoNode);
    REQUIRE(c.peer(lead).node().propose(Payload(std::string("after"))));
    c.stabilize();
    NodeId other = lead == 2 ? 3 : 2;
    CHECK(c.peer(other).applied().back().data.view() == "after");
}

TEST_CASE("s4_2_2_a_removed_node_does_not_campaign") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kRemoveNode, 3)));
    c.stabilize();
    CHECK_FALSE(c.peer(3).node().campaign());
    Term before = c.peer(1).node().term();
    c.tick_all(60);
    CHECK(c.peer(1).node().role() == Role::kLeader);
    CHECK(c.peer(1).node().term() == before);
}

TEST_CASE("s4_2_3_a_follower_hearing_from_its_leader_ignores_a_disruptive_candidate") {
    Config cfg = config_with(1, false, true);
    Cluster c(cfg);
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    Term before = c.peer(1).node().term();
    // 3 stops hearing the leader and campaigns at a higher term.
    c.cut(1, 3);
    c.tick_all(25);
    CHECK(c.peer(3).node().term() > before);   // 3 campaigned, again and again
    CHECK(c.peer(2).node().term() == before);  // 2 never granted or adopted the new term
    CHECK(c.peer(1).node().role() == Role::kLeader);
    CHECK(c.peer(1).node().term() == before);
}

TEST_CASE("s6_invalid_changes_are_refused_and_change_nothing") {
    Fixture f(1, opts().voters({1, 2, 3}));
    make_leader(f);
    Index last = f.raft().log().last_index();
    auto r1 = f.node().propose_conf_change(ConfChange{});  // leave while not joint
    CHECK(r1.status().code() == raftd::Code::kInvalidArgument);
    ConfChange all{ConfTransition::kJointImplicit,
                   {{ConfChangeType::kRemoveNode, 1, ""},
                    {ConfChangeType::kRemoveNode, 2, ""},
                    {ConfChangeType::kRemoveNode, 3, ""}}};
    auto r2 = f.node().propose_conf_change(all);
    CHECK(r2.status().code() == raftd::Code::kInvalidArgument);
    auto r3 = f.node().propose_conf_change(single(ConfChangeType::kAddNode, 0));
    CHECK(r3.status().code() == raftd::Code::kInvalidArgument);
    CHECK(f.raft().log().last_index() == last);
}

TEST_CASE("s6_a_demoted_voter_keeps_voting_until_the_joint_configuration_is_left") {
    ConfState cs;
    cs.voters = {1, 2, 3};
    ConfChange cc{ConfTransition::kJointExplicit, {{ConfChangeType::kAddLearner, 3, ""}}};
    auto joint = apply_conf_change(cs, cc);
    REQUIRE(joint);
    CHECK(is_voter(*joint, 3));
    CHECK(joint->learners_next == std::vector<NodeId>{3});
    auto left = apply_conf_change(*joint, ConfChange{});
    REQUIRE(left);
    CHECK_FALSE(is_voter(*left, 3));
    CHECK(left->learners == std::vector<NodeId>{3});
}

TEST_CASE("s6_a_restarted_node_knows_its_committed_configuration_before_reapplying_it") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}, {4}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose_conf_change(single(ConfChangeType::kAddNode, 4)));
    c.stabilize();
    c.crash(2);
    REQUIRE(c.restart(2));
    // No Ready handled yet: the application has re-applied nothing.
    CHECK(c.peer(2).node().conf_state().voters == std::vector<NodeId>{1, 2, 3, 4});
    REQUIRE(c.peer(2).node().campaign());
    CHECK(c.peer(2).node().role() == Role::kCandidate);
}

TEST_CASE("config_entry_encoding_matches_the_example_in_docs_raft_md") {
    ConfChange cc{ConfTransition::kAuto, {{ConfChangeType::kAddNode, 4, "h:1"}}};
    const unsigned char want[] = {0x43, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                                  0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x03, 0x00, 0x00, 0x00, 0x68, 0x3a, 0x31};
    std::string enc = encode_conf_change(cc);
    CHECK(enc == std::string(reinterpret_cast<const char*>(want), sizeof(want)));
    auto back = decode_conf_change(enc);
    REQUIRE(back);
    CHECK(*back == cc);
    CHECK(decode_conf_change(enc + "x").status().code() == raftd::Code::kCorruption);
}

TEST_CASE("s4_2_2_a_candidate_learns_the_commit_index_from_a_voter_that_refuses_it") {
    Fixture f(1, opts().term(1).log({1, 1, 1}).commit(1));
    REQUIRE(f.node().campaign());
    f.drain();
    Message r = msg(MessageType::kVoteResponse, 2, 1, 2);
    r.reject = true;
    r.commit = 3;
    r.log_term = 5;  // not the term we have at 3: tells us nothing
    REQUIRE(f.step(r));
    CHECK(f.raft().log().committed() == 1);
    r.from = 3;
    r.log_term = 1;  // our entry 3 is that entry: everything up to it is committed
    REQUIRE(f.step(r));
    CHECK(f.raft().log().committed() == 3);
}

// Thesis 5.1: a snapshot's metadata holds the configuration as of its last index. The
// application may apply a Ready's committed entries, and snapshot at one of them, before
// that Ready's own write completes and advance() runs (raftd delivers them early): the
// metadata must already be right then, configuration entries in that Ready included.
TEST_CASE("s5_1_snapshot_metadata_at_an_entry_handed_out_before_advance") {
    Fixture f(2, opts().term(1).vote(1).log({1, 1}).commit(2));
    Entry conf = entry(4, 1);
    conf.type = EntryType::kConfig;
    conf.data = Payload(encode_conf_change(single(ConfChangeType::kAddNode, 4)));
    Message app = msg(MessageType::kAppend, 1, 2, 1);
    app.log_term = 1;
    app.index = 2;
    app.commit = 2;
    app.entries = {entry(3, 1, "x"), conf};
    REQUIRE(f.step(app));
    f.drain();  // entries 3 and 4 are durable, not yet committed

    Message more = msg(MessageType::kAppend, 1, 2, 1);
    more.log_term = 1;
    more.index = 4;
    more.commit = 4;
    more.entries = {entry(5, 1, "y")};
    REQUIRE(f.step(more));
    Ready rd = f.node().ready();  // entry 5 to persist; 3 and 4 handed out as committed
    REQUIRE(rd.committed_entries.size() == 2);
    REQUIRE(f.node().status().applied == 2);

    auto at3 = f.node().snapshot_meta(3);
    REQUIRE(at3);
    CHECK(at3->term == 1);
    CHECK(at3->conf.voters == std::vector<NodeId>{1, 2, 3});
    auto at4 = f.node().snapshot_meta(4);
    REQUIRE(at4);
    CHECK(at4->conf.voters == std::vector<NodeId>{1, 2, 3, 4});
    CHECK(!f.node().snapshot_meta(5));  // appended, but not handed out as committed
    // raft's own configuration still changes only at advance().
    CHECK(f.node().conf_state().voters == std::vector<NodeId>{1, 2, 3});

    (void)f.storage().append(rd.entries);
    if (rd.hard_state) f.storage().set_hard_state(*rd.hard_state);
    f.node().advance();
    auto after = f.node().snapshot_meta(4);
    REQUIRE(after);
    CHECK(*after == *at4);
    CHECK(f.node().conf_state().voters == std::vector<NodeId>{1, 2, 3, 4});
}
