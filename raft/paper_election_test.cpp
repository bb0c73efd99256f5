// Paper tests for leader election: Raft paper Figure 2 ("Rules for Servers", RequestVote)
// and sections 5.1, 5.2, 5.4.1; thesis 9.6 (pre-vote) and 6.2 (check-quorum).
#include <doctest/doctest.h>

#include <set>

#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd::raft;
using namespace raftd::raft::testing;

namespace {
Message vote_request(NodeId from, NodeId to, Term term, Index last, Term last_term,
                     bool pre = false) {
    Message m = msg(pre ? MessageType::kPreVote : MessageType::kVote, from, to, term);
    m.index = last;
    m.log_term = last_term;
    return m;
}
}  // namespace

TEST_CASE("s5_1_follower_updates_its_term_on_a_message_with_a_higher_term") {
    for (Role start : {Role::kFollower, Role::kCandidate, Role::kLeader}) {
        Fixture f(1, opts().term(2));
        if (start != Role::kFollower) {
            REQUIRE(f.node().campaign());
            f.drain();
            if (start == Role::kLeader) {
                for (NodeId v : {2, 3}) {
                    Message r = msg(MessageType::kVoteResponse, v, 1, 3);
                    REQUIRE(f.step(r));
                }
                f.drain();
            }
        }
        REQUIRE(f.node().role() == start);
        Message hb = msg(MessageType::kHeartbeat, 2, 1, 7);
        REQUIRE(f.step(hb));
        CHECK(f.node().term() == 7);
        CHECK(f.node().role() == Role::kFollower);
        CHECK(f.node().leader() == 2);
    }
}

TEST_CASE("s5_1_stale_term_append_is_answered_with_the_current_term_and_changes_nothing") {
    Fixture f(1, opts().term(5).log({1, 2}));
    Message app = msg(MessageType::kAppend, 2, 1, 4);
    app.index = 2;
    app.log_term = 2;
    app.entries = {entry(3, 4, "x")};
    REQUIRE(f.step(app));
    auto out = f.drain();
    REQUIRE(out.size() == 1);
    CHECK(out[0].type == MessageType::kAppendResponse);
    CHECK(out[0].term == 5);
    CHECK(f.raft().log().last_index() == 2);
}

// Figure 2, RequestVote: "Reply false if term < currentTerm", with currentTerm, so the stale
// candidate catches up. Ignored instead, a voter a term behind that never hears from this node
// (which campaigns in an older configuration without it) stays behind at every campaign, and
// a configuration of the two never elects a leader (pipeline simulation seed 8452).
TEST_CASE("figure2_stale_term_vote_request_is_refused_with_the_current_term") {
    Fixture f(1, opts().term(5).log({1, 2}));
    auto r = f.reply(vote_request(2, 1, 4, 9, 4), MessageType::kVoteResponse);
    REQUIRE(r);
    CHECK(r->reject);
    CHECK(r->term == 5);
    CHECK(f.node().term() == 5);
    CHECK(f.raft().hard_state().vote == kNoNode);
}

TEST_CASE("s5_2_follower_starts_an_election_after_the_election_timeout") {
    Fixture f(1, opts().term(1));
    f.tick(2 * 10);
    auto out = f.drain();
    CHECK(f.node().role() == Role::kCandidate);
    CHECK(f.node().term() == 2);
    CHECK(f.raft().vote() == 1);  // votes for itself
    auto votes = filter(out, MessageType::kVote);
    REQUIRE(votes.size() == 2);
    std::set<NodeId> to;
    for (const auto& m : votes) {
        CHECK(m.term == 2);
        to.insert(m.to);
    }
    CHECK(to == std::set<NodeId>{2, 3});
}

TEST_CASE("s5_2_election_timeouts_are_randomized_between_one_and_two_election_ticks") {
    std::set<int> seen;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        Config c = test_config(1);
        c.seed = seed;
        Fixture f(1, opts().term(1), c);
        int ticks = 0;
        while (f.node().role() == Role::kFollower && ticks < 100) {
            f.node().tick();
            ++ticks;
        }
        CHECK(ticks >= 10);
        CHECK(ticks < 20);
        seen.insert(ticks);
    }
    CHECK(seen.size() > 3);  // really random, not a constant
}

TEST_CASE("s5_2_candidate_wins_with_votes_from_a_majority") {
    struct Case {
        size_t size;
        std::vector<std::pair<NodeId, bool>> votes;
        Role want;
    };
    std::vector<Case> cases = {
        {1, {}, Role::kLeader},
        {3, {{2, true}}, Role::kLeader},
        {3, {{2, false}}, Role::kCandidate},
        {3, {{2, false}, {3, false}}, Role::kFollower},
        {5, {{2, true}}, Role::kCandidate},
        {5, {{2, true}, {3, true}}, Role::kLeader},
        {5, {{2, false}, {3, false}}, Role::kCandidate},
        {5, {{2, false}, {3, false}, {4, false}}, Role::kFollower},
    };
    for (const auto& c : cases) {
        std::vector<NodeId> voters;
        for (NodeId i = 1; i <= c.size; ++i)
            voters.push_back(i);
        Fixture f(1, opts().voters(voters).term(1));
        REQUIRE(f.node().campaign());
        f.drain();
        for (auto [from, grant] : c.votes) {
            Message r = msg(MessageType::kVoteResponse, from, 1, 2);
            r.reject = !grant;
            REQUIRE(f.step(r));
        }
        CHECK(f.node().role() == c.want);
    }
}

TEST_CASE("s5_2_follower_votes_for_at_most_one_candidate_per_term") {
    Fixture f(1, opts().term(1));
    REQUIRE(f.step(vote_request(2, 1, 2, 0, 0)));
    REQUIRE(f.step(vote_request(3, 1, 2, 0, 0)));
    REQUIRE(f.step(vote_request(2, 1, 2, 0, 0)));  // asking again gets the same answer
    auto out = filter(f.drain(), MessageType::kVoteResponse);
    REQUIRE(out.size() == 3);
    CHECK(out[0].to == 2);
    CHECK_FALSE(out[0].reject);
    CHECK(out[1].to == 3);
    CHECK(out[1].reject);
    CHECK(out[2].to == 2);
    CHECK_FALSE(out[2].reject);
    CHECK(f.storage().hard_state().vote == 2);
}

TEST_CASE("figure2_vote_is_persisted_before_the_vote_response_is_sent") {
    Fixture f(1, opts().term(1));
    REQUIRE(f.step(vote_request(2, 1, 2, 0, 0)));
    Ready rd = f.node().ready();
    REQUIRE(rd.hard_state);
    CHECK(rd.hard_state->vote == 2);
    CHECK(rd.hard_state->term == 2);
    CHECK(rd.messages.empty());
    REQUIRE(rd.persisted_messages.size() == 1);
    CHECK(rd.persisted_messages[0].type == MessageType::kVoteResponse);
    f.node().advance();
}

TEST_CASE("s5_2_candidate_falls_back_to_follower_on_append_from_a_leader_of_its_term") {
    Fixture f(1, opts().term(1));
    REQUIRE(f.node().campaign());
    f.drain();
    REQUIRE(f.node().role() == Role::kCandidate);
    Message app = msg(MessageType::kAppend, 2, 1, 2);
    REQUIRE(f.step(app));
    CHECK(f.node().role() == Role::kFollower);
    CHECK(f.node().leader() == 2);
    CHECK(f.node().term() == 2);
}

TEST_CASE("s5_2_leader_sends_heartbeats_every_heartbeat_tick") {
    Config c = test_config(1);
    c.heartbeat_tick = 3;
    Fixture f(1, opts().term(1), c);
    REQUIRE(f.node().campaign());
    f.drain();
    for (NodeId v : {2, 3})
        REQUIRE(f.step(msg(MessageType::kVoteResponse, v, 1, 2)));
    f.drain();
    REQUIRE(f.node().role() == Role::kLeader);
    f.tick(2);
    CHECK(filter(f.drain(), MessageType::kHeartbeat).empty());
    f.tick(1);
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    CHECK(hbs.size() == 2);
}

TEST_CASE("s5_4_1_voter_rejects_candidate_whose_log_is_less_up_to_date") {
    // Our log: terms 1, 2, 2 (last 2/3).
    struct Case {
        Index last;
        Term last_term;
        bool granted;
    };
    std::vector<Case> cases = {
        {3, 2, true}, {4, 2, true}, {2, 2, false}, {5, 1, false}, {1, 3, true}, {0, 0, false},
    };
    for (const auto& c : cases) {
        Fixture f(1, opts().term(2).log({1, 2, 2}));
        auto r = f.reply(vote_request(2, 1, 3, c.last, c.last_term), MessageType::kVoteResponse);
        REQUIRE(r);
        CHECK(r->reject == !c.granted);
    }
}

TEST_CASE("s5_4_1_candidate_with_a_stale_log_cannot_become_leader") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    // 3 misses an entry the others commit.
    c.isolate(3);
    REQUIRE(c.peer(1).node().propose(raftd::raft::Payload(std::string("x"))).is_ok());
    c.stabilize();
    c.heal();
    CHECK(c.elect(3).code() == raftd::Code::kAborted);
    c.stabilize();
    CHECK(c.peer(3).node().role() != Role::kLeader);
}

namespace {
// Partitions node 3 away for many election timeouts while the others keep running, then
// heals and lets everyone run again. Returns the leader's term before and after.
std::pair<Term, Term> rejoin_after_partition(bool pre_vote) {
    Config cfg = test_config(1);
    cfg.pre_vote = pre_vote;
    Cluster c(cfg);
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    Term before = c.peer(1).node().term();
    c.isolate(3);
    for (int i = 0; i < 100; ++i) {
        for (NodeId id : c.ids())
            c.tick(id);
        c.stabilize();
    }
    c.heal();
    for (int i = 0; i < 30; ++i) {
        for (NodeId id : c.ids())
            c.tick(id);
        c.stabilize();
    }
    REQUIRE(c.leader() != kNoNode);
    return {before, c.peer(c.leader()).node().term()};
}
}  // namespace

TEST_CASE("s9_6_pre_vote_lets_a_rejoining_partitioned_node_leave_the_leader_alone") {
    auto [before, after] = rejoin_after_partition(true);
    CHECK(after == before);
}

TEST_CASE("s9_6_without_pre_vote_a_rejoining_partitioned_node_forces_a_new_term") {
    // The contrast that motivates pre-vote: the isolated node inflated its term.
    auto [before, after] = rejoin_after_partition(false);
    CHECK(after > before);
}

TEST_CASE("s6_2_check_quorum_leader_steps_down_when_it_cannot_hear_a_quorum") {
    Config cfg = test_config(1);
    cfg.check_quorum = true;
    Cluster c(cfg);
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    c.isolate(1);
    for (int i = 0; i < cfg.election_tick; ++i) {
        c.tick(1);
        c.stabilize();
    }
    CHECK(c.peer(1).node().role() == Role::kLeader);  // heard from all in the first window
    for (int i = 0; i < cfg.election_tick; ++i) {
        c.tick(1);
        c.stabilize();
    }
    CHECK(c.peer(1).node().role() == Role::kFollower);
}

TEST_CASE("s4_2_3_follower_with_a_live_leader_ignores_vote_requests_under_check_quorum") {
    Config cfg = test_config(1);
    cfg.check_quorum = true;
    Fixture f(1, opts().term(2), cfg);
    REQUIRE(f.step(msg(MessageType::kHeartbeat, 2, 1, 2)));
    f.drain();
    REQUIRE(f.step(vote_request(3, 1, 3, 10, 2)));
    CHECK(f.drain().empty());
    CHECK(f.node().term() == 2);
}

TEST_CASE("figure2_candidate_persists_its_term_and_self_vote_before_asking_for_votes") {
    Fixture f(1, opts().term(1));
    REQUIRE(f.node().campaign());
    Ready rd = f.node().ready();
    REQUIRE(rd.hard_state);
    CHECK(rd.hard_state->term == 2);
    CHECK(rd.hard_state->vote == 1);
    CHECK(filter(rd.messages, MessageType::kVote).empty());
    CHECK(filter(rd.persisted_messages, MessageType::kVote).size() == 2);
    f.storage().set_hard_state(*rd.hard_state);
    f.node().advance();
}

TEST_CASE("s9_6_a_pre_candidate_changes_neither_term_nor_vote") {
    Config cfg = config_with(1, true, false);
    Fixture f(1, opts().term(3).vote(2), cfg);
    REQUIRE(f.node().campaign());
    auto out = f.drain();
    CHECK(f.node().role() == Role::kPreCandidate);
    CHECK(f.node().term() == 3);
    CHECK(f.raft().vote() == 2);
    CHECK(f.storage().hard_state().term == 3);
    auto pre = filter(out, MessageType::kPreVote);
    REQUIRE(pre.size() == 2);
    CHECK(pre[0].term == 4);  // the term it would campaign in
    // Losing the pre-vote leaves no trace either.
    for (NodeId v : {2, 3}) {
        Message r = msg(MessageType::kPreVoteResponse, v, 1, 3);
        r.reject = true;
        REQUIRE(f.step(r));
    }
    CHECK(f.node().role() == Role::kFollower);
    CHECK(f.node().term() == 3);
}

TEST_CASE("s9_6_a_pre_vote_majority_starts_the_real_election") {
    Config cfg = config_with(1, true, false);
    Fixture f(1, opts().term(3), cfg);
    REQUIRE(f.node().campaign());
    f.drain();
    REQUIRE(f.step(msg(MessageType::kPreVoteResponse, 2, 1, 4)));
    auto votes = filter(f.drain(), MessageType::kVote);
    CHECK(f.node().role() == Role::kCandidate);
    CHECK(f.node().term() == 4);
    CHECK(votes.size() == 2);
}

TEST_CASE("s5_1_candidate_steps_down_when_a_refusal_carries_a_higher_term") {
    Fixture f(1, opts().term(1));
    REQUIRE(f.node().campaign());
    f.drain();
    Message r = msg(MessageType::kVoteResponse, 2, 1, 9);
    r.reject = true;
    REQUIRE(f.step(r));
    CHECK(f.node().role() == Role::kFollower);
    CHECK(f.node().term() == 9);
}

TEST_CASE("s5_2_a_leader_does_not_grant_votes_in_its_own_term") {
    Fixture f(1);
    make_leader(f);
    Term t = f.node().term();
    auto r = f.reply(vote_request(2, 1, t, 100, t), MessageType::kVoteResponse);
    REQUIRE(r);
    CHECK(r->reject);
    CHECK(f.node().role() == Role::kLeader);
}
