// Paper tests for client interaction: Raft paper section 8 and thesis 6.4 (ReadIndex,
// lease-based reads), plus leadership transfer (thesis 3.10) which clients see as refused
// proposals.
#include <doctest/doctest.h>

#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd::raft;
using namespace raftd::raft::testing;

namespace {

Message hb_ack(NodeId from, NodeId to, Term term, uint64_t round) {
    Message m = msg(MessageType::kHeartbeatResponse, from, to, term);
    m.round = round;
    return m;
}

// A leader of {1,2,3} whose noop is committed (acknowledged by 2), everything drained.
void committed_leader(Fixture& f) {
    make_leader(f);
    REQUIRE(f.step(ack(2, 1, f.node().term(), f.raft().log().last_index())));
    f.drain();
    REQUIRE(f.raft().log().committed() == f.raft().log().last_index());
}

// A committed leader of {1,2,3} whose heartbeat round node 2 acknowledged: with lease_read
// configured, it holds a lease.
void lease_holder(Fixture& f) {
    committed_leader(f);
    f.tick(1);
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE_FALSE(hbs.empty());
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), hbs[0].round)));
    f.drain();
}

}  // namespace

TEST_CASE("s8_read_index_is_served_once_a_quorum_answers_a_heartbeat_sent_after_it") {
    Fixture f(1);
    committed_leader(f);
    REQUIRE(f.node().read_index("r1"));
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE(hbs.size() == 2);
    uint64_t round = hbs[0].round;
    CHECK(f.read_states().empty());
    // An answer to an older round proves nothing about the time after the read arrived.
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), round - 1)));
    f.drain();
    CHECK(f.read_states().empty());
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), round)));
    f.drain();
    REQUIRE(f.read_states().size() == 1);
    CHECK(f.read_states()[0].context == "r1");
    CHECK(f.read_states()[0].index == f.raft().log().committed());
}

TEST_CASE("s8_leader_answers_reads_only_after_committing_an_entry_of_its_term") {
    // Thesis 6.4 step 1: a new leader does not know the commit index until its noop commits.
    Fixture f(1, opts().term(1).log({1, 1}));
    make_leader(f);
    REQUIRE(f.node().read_index("early"));
    f.drain();
    REQUIRE(f.step(hb_ack(2, 1, 2, 1)));
    REQUIRE(f.step(hb_ack(3, 1, 2, 1)));
    f.drain();
    CHECK(f.read_states().empty());
    REQUIRE(f.step(ack(2, 1, 2, 3)));  // the noop commits
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE_FALSE(hbs.empty());
    REQUIRE(f.step(hb_ack(2, 1, 2, hbs.back().round)));
    f.drain();
    REQUIRE(f.read_states().size() == 1);
    CHECK(f.read_states()[0].index == 3);
}

TEST_CASE("s8_stale_leader_cannot_serve_read_index") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    c.isolate(1);
    REQUIRE(c.elect(2));
    REQUIRE(c.peer(2).node().propose(Payload(std::string("new"))));
    c.stabilize();
    // 1 still believes it leads; its read must never complete.
    REQUIRE(c.peer(1).node().role() == Role::kLeader);
    REQUIRE(c.peer(1).node().read_index("stale"));
    for (int i = 0; i < 30; ++i) {
        c.tick(1);
        c.stabilize();
    }
    CHECK(c.peer(1).read_states().empty());
    c.heal();
    c.tick_all(3);
    CHECK(c.peer(1).node().role() == Role::kFollower);
    CHECK(c.peer(1).read_states().empty());  // dropped, never answered with a stale index
}

TEST_CASE("s8_follower_forwards_read_index_to_the_leader_and_gets_its_commit_index") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose(Payload(std::string("x"))));
    c.stabilize();
    REQUIRE(c.peer(3).node().read_index("f"));
    c.stabilize();
    REQUIRE(c.peer(3).read_states().size() == 1);
    CHECK(c.peer(3).read_states()[0].index == c.peer(1).node().raft().log().committed());
    CHECK(c.peer(3).read_states()[0].context == "f");
}

TEST_CASE("s8_read_index_without_a_known_leader_is_unavailable") {
    Fixture f(2, opts().term(1));
    auto st = f.node().read_index("x");
    CHECK(st.code() == raftd::Code::kUnavailable);
}

TEST_CASE("s8_single_voter_serves_reads_at_once") {
    Fixture f(1, opts().voters({1}));
    make_leader(f);
    REQUIRE(f.node().read_index("solo"));
    f.drain();
    REQUIRE(f.read_states().size() == 1);
    CHECK(f.read_states()[0].index == 1);
}

TEST_CASE("s6_4_lease_read_requires_check_quorum") {
    Config c = test_config(1);
    c.lease_read = true;
    c.check_quorum = false;
    CHECK(c.validate().code() == raftd::Code::kInvalidArgument);
    c.check_quorum = true;
    CHECK(c.validate());
}

TEST_CASE("s6_4_lease_read_is_served_without_a_heartbeat_round_while_the_lease_holds") {
    Config cfg = config_with(1, false, true);
    cfg.lease_read = true;
    Fixture f(1, opts(), cfg);
    lease_holder(f);
    REQUIRE(f.node().read_index("lease"));
    auto out = f.drain();
    CHECK(filter(out, MessageType::kHeartbeat).empty());
    REQUIRE(f.read_states().size() == 1);
    // Once election_tick - 1 ticks passed without new acknowledgements, the lease is gone and
    // a read needs a heartbeat round again.
    f.read_states().clear();
    for (int i = 0; i < 9; ++i) {
        f.tick(1);
        f.drain();
    }
    REQUIRE(f.node().read_index("late"));
    out = f.drain();
    CHECK_FALSE(filter(out, MessageType::kHeartbeat).empty());
    CHECK(f.read_states().empty());
}

TEST_CASE("s6_4_a_read_that_declines_the_lease_is_confirmed_by_a_heartbeat_round") {
    Config cfg = config_with(1, false, true);
    cfg.lease_read = true;
    Fixture f(1, opts(), cfg);
    lease_holder(f);
    // The lease holds (a lease read would be answered at once), but this reader declined it.
    REQUIRE(f.node().read_index("quorum", false));
    auto out = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE_FALSE(out.empty());
    CHECK(f.read_states().empty());
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), out[0].round)));
    f.drain();
    CHECK(f.read_states().size() == 1);
}

TEST_CASE("s6_4_a_follower_forwards_whether_its_reader_accepts_the_lease") {
    Config cfg = config_with(2, false, true);
    cfg.lease_read = true;
    Fixture f(2, opts(), cfg);
    REQUIRE(f.step(msg(MessageType::kHeartbeat, 1, 2, 1)));
    f.drain();
    REQUIRE(f.node().read_index("a", false));
    REQUIRE(f.node().read_index("b"));
    auto out = filter(f.drain(), MessageType::kReadIndex);
    REQUIRE(out.size() == 2);
    CHECK_FALSE(out[0].lease);
    CHECK(out[1].lease);
}

TEST_CASE("s6_4_lease_read_is_off_unless_configured") {
    Config cfg = config_with(1, false, true);
    Fixture f(1, opts(), cfg);
    committed_leader(f);
    f.tick(1);
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), hbs[0].round)));
    f.drain();
    REQUIRE(f.node().read_index("noleasing"));
    auto out = f.drain();
    CHECK_FALSE(filter(out, MessageType::kHeartbeat).empty());
    CHECK(f.read_states().empty());
}

TEST_CASE("s3_10_leader_transfer_refuses_proposals_while_in_progress") {
    Fixture f(1);
    committed_leader(f);
    REQUIRE(f.node().transfer_leader(3));  // 3 is behind: the leader catches it up first
    auto r = f.node().propose(Payload(std::string("x")));
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == raftd::Code::kBusy);
    auto cc = f.node().propose_conf_change(
        ConfChange{ConfTransition::kAuto, {{ConfChangeType::kAddLearner, 9, ""}}});
    CHECK(cc.status().code() == raftd::Code::kBusy);
}

TEST_CASE("s3_10_leader_transfer_sends_timeout_now_once_the_target_caught_up") {
    Fixture f(1);
    committed_leader(f);
    REQUIRE(f.node().transfer_leader(3));
    auto out = f.drain();
    CHECK(filter(out, MessageType::kTimeoutNow).empty());
    REQUIRE(f.step(ack(3, 1, f.node().term(), f.raft().log().last_index())));
    out = f.drain();
    auto tn = filter(out, MessageType::kTimeoutNow);
    REQUIRE(tn.size() == 1);
    CHECK(tn[0].to == 3);
}

TEST_CASE("s3_10_leader_transfer_is_abandoned_after_an_election_timeout") {
    Fixture f(1);
    committed_leader(f);
    REQUIRE(f.node().transfer_leader(3));
    for (int i = 0; i < 10; ++i) {
        f.tick(1);
        f.drain();
    }
    CHECK(f.node().status().lead_transferee == kNoNode);
    CHECK(f.node().propose(Payload(std::string("x"))));
}

TEST_CASE("s3_10_transfer_target_wins_even_though_followers_hear_from_the_leader") {
    Config cfg = config_with(1, true, true);
    Cluster c(cfg);
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    REQUIRE(c.peer(1).node().propose(Payload(std::string("x"))));
    c.stabilize();
    Term before = c.peer(1).node().term();
    REQUIRE(c.peer(1).node().transfer_leader(2));
    c.stabilize();
    CHECK(c.leader() == 2);
    CHECK(c.peer(2).node().term() == before + 1);
    CHECK(c.peer(1).node().role() == Role::kFollower);
}

TEST_CASE("s3_10_transfer_to_a_non_voter_or_itself_is_refused") {
    Fixture f(1, opts().voters({1, 2, 3}).learners({4}));
    committed_leader(f);
    CHECK(f.node().transfer_leader(4).code() == raftd::Code::kInvalidArgument);
    CHECK(f.node().transfer_leader(1).code() == raftd::Code::kInvalidArgument);
    CHECK(f.node().transfer_leader(7).code() == raftd::Code::kInvalidArgument);
}

TEST_CASE("s6_4_no_lease_reads_after_a_transfer_was_started") {
    Config cfg = config_with(1, false, true);
    cfg.lease_read = true;
    Fixture f(1, opts(), cfg);
    committed_leader(f);
    REQUIRE(f.step(ack(3, 1, f.node().term(), f.raft().log().last_index())));
    f.drain();
    REQUIRE(f.node().transfer_leader(3));  // TimeoutNow goes out at once
    REQUIRE_FALSE(filter(f.drain(), MessageType::kTimeoutNow).empty());
    // The target's election ignores every lease; this leader's lease must be void.
    f.tick(10);  // transfer abandoned (target never campaigned in this test)
    f.drain();
    REQUIRE(f.node().role() == Role::kLeader);
    f.tick(1);
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE_FALSE(hbs.empty());
    REQUIRE(f.step(hb_ack(2, 1, f.node().term(), hbs[0].round)));
    f.drain();
    REQUIRE(f.node().read_index("after-transfer"));
    auto out = f.drain();
    CHECK_FALSE(filter(out, MessageType::kHeartbeat).empty());
}

TEST_CASE("s6_4_with_lease_reads_a_restarted_node_refuses_votes_for_an_election_timeout") {
    Config cfg = config_with(2, false, true);
    cfg.lease_read = true;
    Fixture f(2, opts().term(1), cfg);
    Message v = msg(MessageType::kVote, 3, 2, 5);  // above any term its own timeout reaches
    REQUIRE(f.step(v));
    CHECK(f.drain().empty());  // ignored: the node may have promised a leader before a crash
    f.tick(10);
    f.drain();
    auto r = f.reply(v, MessageType::kVoteResponse);
    REQUIRE(r);
    CHECK_FALSE(r->reject);
}

TEST_CASE("s8_a_single_voter_leader_also_waits_for_its_term_to_commit_before_serving_reads") {
    // 1 became the only voter through a change a previous leader committed, together with
    // entries 2 and 3 that 1 stored (its acknowledgement committed them) but was never told
    // are committed. Its commit index (1) lags: serving a read at it would be stale.
    Fixture f(1, opts().voters({1}).term(1).log({1, 1, 1}).commit(1));
    REQUIRE(f.node().campaign());
    REQUIRE(f.node().role() == Role::kLeader);
    REQUIRE(f.node().read_index("r"));
    CHECK(f.raft().log().committed() == 1);
    f.drain();  // the noop is persisted and commits, and everything before it
    REQUIRE(f.read_states().size() == 1);
    CHECK(f.read_states()[0].index == 4);
}
