// Paper tests for log replication: Raft paper Figure 2 (AppendEntries, "Rules for Servers"),
// sections 5.3 and 5.4.2, and the thesis on flow control (10.2) and on writing the leader's
// log in parallel (10.2.1). Each test is named after the rule it checks.
#include <doctest/doctest.h>

#include <string>

#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd::raft;
using namespace raftd::raft::testing;

namespace {

Message append(NodeId from, NodeId to, Term term, Index prev, Term prev_term, Index commit,
               std::vector<Entry> ents = {}) {
    Message m = msg(MessageType::kAppend, from, to, term);
    m.index = prev;
    m.log_term = prev_term;
    m.commit = commit;
    m.entries = std::move(ents);
    return m;
}

std::vector<Term> terms_of(const Fixture& f) {
    std::vector<Term> out;
    const RaftLog& log = f.raft().log();
    for (Index i = log.first_index(); i <= log.last_index(); ++i)
        out.push_back(log.term_or_zero(i));
    return out;
}

Payload bytes(size_t n, char c = 'x') {
    return Payload(std::string(n, c));
}

// Makes follower `to` replicate (an acknowledgement of everything the leader has).
void ack_all(Fixture& leader, NodeId to) {
    Term t = leader.node().term();
    REQUIRE(leader.step(ack(to, leader.node().id(), t, leader.raft().log().last_index())));
    leader.drain();
}

// Makes f (node 1 of {1,2,3}) the leader, with both followers replicating.
void replicating_leader(Fixture& f) {
    make_leader(f);
    ack_all(f, 2);
    ack_all(f, 3);
}

}  // namespace

TEST_CASE("s5_3_leader_appends_a_noop_entry_of_its_term_on_election") {
    Fixture f(1, opts().term(1).log({1}));
    make_leader(f);
    const RaftLog& log = f.raft().log();
    REQUIRE(log.last_index() == 2);
    auto ents = log.slice(2, 3, 0);
    REQUIRE(ents);
    CHECK(ents->at(0).type == EntryType::kNoop);
    CHECK(ents->at(0).term == 2);
}

TEST_CASE("s5_3_leader_appends_a_proposal_to_its_log_and_sends_it_to_every_follower") {
    Fixture f(1);
    replicating_leader(f);
    auto id = f.node().propose(Payload(std::string("v")));
    REQUIRE(id);
    CHECK(id->index == 2);
    CHECK(id->term == 1);
    auto apps = filter(f.drain(), MessageType::kAppend);
    REQUIRE(apps.size() == 2);
    for (const Message& m : apps) {
        CHECK(m.index == 1);  // previous entry: the noop
        CHECK(m.log_term == 1);
        REQUIRE(m.entries.size() == 1);
        CHECK(m.entries[0].data.view() == "v");
    }
}

TEST_CASE("s5_3_leader_commits_an_entry_once_a_majority_stored_it") {
    Fixture f(1, opts().voters({1, 2, 3, 4, 5}));
    make_leader(f);
    auto id = f.node().propose(Payload(std::string("v")));
    REQUIRE(id);
    f.drain();
    CHECK(f.raft().log().committed() == 0);
    REQUIRE(f.step(ack(2, 1, 1, 2)));
    f.drain();
    CHECK(f.raft().log().committed() == 0);  // 2 of 5
    REQUIRE(f.step(ack(3, 1, 1, 2)));
    f.drain();
    CHECK(f.raft().log().committed() == 2);  // 3 of 5
    REQUIRE(f.applied().size() == 2);
    CHECK(f.applied().back().data.view() == "v");
}

TEST_CASE("s5_3_leader_tells_followers_the_commit_index_and_they_apply_up_to_it") {
    Fixture f(2, opts().term(1).log({1}));
    REQUIRE(f.step(append(1, 2, 1, 1, 1, 2, {entry(2, 1, "a"), entry(3, 1, "b")})));
    f.drain();
    CHECK(f.raft().log().committed() == 2);
    REQUIRE(f.applied().size() == 2);
    CHECK(f.applied()[1].data.view() == "a");
    // A heartbeat moves commit further, but never past what the follower has.
    Message hb = msg(MessageType::kHeartbeat, 1, 2, 1);
    hb.commit = 3;
    REQUIRE(f.step(hb));
    f.drain();
    CHECK(f.raft().log().committed() == 3);
}

TEST_CASE("figure2_follower_commit_is_min_of_leader_commit_and_its_last_new_entry") {
    // The leader committed 5 but this append only brings the follower to 3; entries the
    // follower has beyond 3 may not match the leader's and must not be committed.
    Fixture f(2, opts().term(1).log({1, 1, 1, 1}));
    REQUIRE(f.step(append(1, 2, 2, 2, 1, 5, {entry(3, 1, "e3")})));
    f.drain();
    CHECK(f.raft().log().committed() == 3);
}

TEST_CASE("figure2_follower_rejects_append_whose_previous_entry_does_not_match") {
    struct Case {
        Index prev;
        Term prev_term;
        bool reject;
    };
    // Follower log: terms 1 1 2.
    std::vector<Case> cases = {
        {3, 2, false}, {3, 3, true}, {2, 1, false}, {2, 2, true}, {4, 2, true}, {0, 0, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.prev);
        CAPTURE(c.prev_term);
        Fixture f(2, opts().term(2).log({1, 1, 2}));
        auto r = f.reply(append(1, 2, 3, c.prev, c.prev_term, 0, {entry(c.prev + 1, 3, "n")}),
                         MessageType::kAppendResponse);
        REQUIRE(r);
        CHECK(r->reject == c.reject);
        if (c.reject) {
            CHECK(r->index == c.prev);
            CHECK(terms_of(f) == std::vector<Term>{1, 1, 2});  // nothing changed
        } else {
            CHECK(r->index == c.prev + 1);
        }
    }
}

TEST_CASE("figure2_follower_deletes_a_conflicting_suffix_and_appends_the_new_entries") {
    Fixture f(2, opts().term(2).log({1, 1, 2, 2}));
    REQUIRE(f.step(append(1, 2, 3, 2, 1, 0, {entry(3, 3, "x")})));
    f.drain();
    CHECK(terms_of(f) == std::vector<Term>{1, 1, 3});
    CHECK(f.storage().last_index() == 3);
    auto t = f.storage().term(3);
    REQUIRE(t);
    CHECK(*t == 3);
}

TEST_CASE("figure2_follower_keeps_entries_that_match_when_an_append_arrives_late") {
    // A delayed append that is a prefix of what we have must not truncate the newer entries.
    Fixture f(2, opts().term(2).log({1, 2, 2, 2}));
    auto r = f.reply(append(1, 2, 2, 1, 1, 0, {entry(2, 2, "e2")}), MessageType::kAppendResponse);
    REQUIRE(r);
    CHECK_FALSE(r->reject);
    CHECK(terms_of(f) == std::vector<Term>{1, 2, 2, 2});
}

TEST_CASE("s5_3_rejection_carries_a_conflict_hint_of_the_last_index_whose_term_may_match") {
    // Follower: 1 1 1 2 2 2 3 3. Leader probes prev=7 with term 5: the follower's entries of
    // term <= 5 end at 8 beyond the probe, so the hint is 7 with its term 3; with term 2
    // the hint skips term 3 entirely.
    Fixture f(2, opts().term(5).log({1, 1, 1, 2, 2, 2, 3, 3}));
    auto r = f.reply(append(1, 2, 5, 7, 5, 0), MessageType::kAppendResponse);
    REQUIRE(r);
    CHECK(r->reject);
    CHECK(r->reject_hint == 7);
    CHECK(r->log_term == 3);

    r = f.reply(append(1, 2, 5, 8, 2, 0), MessageType::kAppendResponse);
    REQUIRE(r);
    CHECK(r->reject);
    CHECK(r->reject_hint == 6);
    CHECK(r->log_term == 2);

    // A probe beyond the follower's log is answered with its last index.
    r = f.reply(append(1, 2, 5, 20, 5, 0), MessageType::kAppendResponse);
    REQUIRE(r);
    CHECK(r->reject_hint == 8);
    CHECK(r->log_term == 3);
}

TEST_CASE("s5_3_fast_backtracking_skips_a_whole_term_per_round_trip") {
    // Figure 7: leader for term 8 with log 1 1 1 4 4 5 5 6 6 6; follower (f) with
    // 1 1 1 2 2 2 3 3 3 3 3. One entry per round trip would take 8 rejections.
    Fixture leader(1, opts().term(7).log({1, 1, 1, 4, 4, 5, 5, 6, 6, 6}));
    Fixture follower(2, opts().term(3).log({1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}));
    make_leader(leader);
    REQUIRE(leader.node().term() == 8);
    int rejections = 0;
    std::vector<Message> to_leader;
    // Nudge the leader: a heartbeat answer makes it send to the probing follower.
    Message hbr = msg(MessageType::kHeartbeatResponse, 2, 1, 8);
    REQUIRE(leader.step(hbr));
    for (int round = 0; round < 20; ++round) {
        bool moved = false;
        for (const Message& m : leader.drain()) {
            if (m.to != 2) continue;
            REQUIRE(follower.step(m));
            moved = true;
        }
        for (const Message& m : follower.drain()) {
            if (m.type == MessageType::kAppendResponse && m.reject) ++rejections;
            REQUIRE(leader.step(m));
            moved = true;
        }
        if (!moved) break;
    }
    CHECK(rejections <= 2);
    CHECK(terms_of(follower) == terms_of(leader));
    CHECK(terms_of(follower) == std::vector<Term>{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8});
}

TEST_CASE("s5_4_2_leader_commits_only_entries_of_its_current_term_by_counting_replicas") {
    // Figure 8: an entry of an earlier term stored on a majority is not committed by
    // counting; only once an entry of the current term is stored on a majority.
    Fixture f(1, opts().term(3).log({1, 2}));
    make_leader(f);  // term 4, noop at 3
    REQUIRE(f.node().term() == 4);
    REQUIRE(f.step(ack(2, 1, 4, 2)));  // 2 stores the term-2 entry: a majority with us
    f.drain();
    CHECK(f.raft().log().committed() == 0);
    REQUIRE(f.step(ack(2, 1, 4, 3)));  // ...and now the term-4 noop
    f.drain();
    CHECK(f.raft().log().committed() == 3);
    CHECK(f.applied().size() == 3);
}

TEST_CASE("s10_2_1_leader_sends_new_entries_before_its_own_write_is_durable") {
    Fixture f(1);
    make_leader(f);
    ack_all(f, 2);
    REQUIRE(f.node().propose(Payload(std::string("v"))));
    Ready rd = f.node().ready();
    CHECK(rd.entries.size() == 1);
    CHECK(filter(rd.messages, MessageType::kAppend).size() == 1);  // immediate
    CHECK(rd.persisted_messages.empty());
    (void)f.storage().append(rd.entries);
    f.node().advance();
}

TEST_CASE("s10_2_1_leader_counts_its_own_entries_toward_commit_only_after_they_are_persisted") {
    Fixture f(1);
    replicating_leader(f);
    auto id = f.node().propose(Payload(std::string("v")));
    REQUIRE(id);
    Ready rd = f.node().ready();  // the write is in progress
    REQUIRE(f.step(ack(2, 1, 1, id->index)));
    CHECK(f.raft().log().committed() == 1);  // 2 of 3 have it, but one is us, not durable
    (void)f.storage().append(rd.entries);
    f.node().advance();  // now it is durable
    CHECK(f.raft().log().committed() == id->index);

    // Two followers suffice without the leader's own copy.
    auto id3 = f.node().propose(Payload(std::string("z")));
    REQUIRE(id3);
    Ready rd3 = f.node().ready();
    REQUIRE(f.step(ack(2, 1, 1, id3->index)));
    REQUIRE(f.step(ack(3, 1, 1, id3->index)));
    CHECK(f.raft().log().committed() == id3->index);
    (void)f.storage().append(rd3.entries);
    f.node().advance();
}

TEST_CASE("s10_2_1_leader_hands_out_new_batches_while_its_own_writes_are_in_flight") {
    Fixture f(1);
    replicating_leader(f);
    const Index base = f.raft().log().committed();
    auto a = f.node().propose(Payload(std::string("a")));
    REQUIRE(a);
    Ready rd1 = f.node().ready();
    REQUIRE(rd1.entries.size() == 1);
    EntryId last1 = f.node().advance_except_entries();
    CHECK(last1 == *a);
    // The next proposal leaves at once, alone: `a` is not handed out again.
    auto b = f.node().propose(Payload(std::string("b")));
    REQUIRE(b);
    REQUIRE(f.node().has_ready());
    Ready rd2 = f.node().ready();
    REQUIRE(rd2.entries.size() == 1);
    CHECK(rd2.entries[0].index == b->index);
    CHECK(!filter(rd2.messages, MessageType::kAppend).empty());
    EntryId last2 = f.node().advance_except_entries();

    // One follower and our own unwritten copy are not a quorum.
    REQUIRE(f.step(ack(2, 1, 1, b->index)));
    CHECK(f.raft().log().committed() == base);
    // Two followers are: both entries commit, but neither is handed out before it is
    // durable here.
    REQUIRE(f.step(ack(3, 1, 1, b->index)));
    CHECK(f.raft().log().committed() == b->index);
    while (f.node().has_ready()) {
        Ready rd = f.node().ready();
        CHECK(rd.committed_entries.empty());
        f.node().advance();
    }
    (void)f.storage().append(rd1.entries);
    f.node().entries_persisted(last1);
    REQUIRE(f.node().has_ready());
    Ready rd3 = f.node().ready();
    REQUIRE(rd3.committed_entries.size() == 1);
    CHECK(rd3.committed_entries[0].index == a->index);
    f.node().advance();
    (void)f.storage().append(rd2.entries);
    f.node().entries_persisted(last2);
    Ready rd4 = f.node().ready();
    REQUIRE(rd4.committed_entries.size() == 1);
    CHECK(rd4.committed_entries[0].index == b->index);
    f.node().advance();
}

TEST_CASE("s10_2_1_a_late_report_of_entries_a_new_leader_replaced_changes_nothing") {
    Fixture f(1);
    replicating_leader(f);
    const Index base = f.raft().log().last_index();
    REQUIRE(f.node().propose(Payload(std::string("lost"))));
    Ready rd1 = f.node().ready();
    EntryId last1 = f.node().advance_except_entries();
    // A newer leader (2) overwrites our unwritten entry before our write returns.
    const Term t2 = f.raft().term() + 1;
    REQUIRE(f.step(append(2, 1, t2, base, f.raft().log().term_or_zero(base), base,
                          {entry(base + 1, t2, "new")})));
    CHECK(f.raft().role() == Role::kFollower);
    Ready rd2 = f.node().ready();
    REQUIRE(rd2.entries.size() == 1);
    CHECK(rd2.entries[0].term == t2);
    // The old write lands first (the storage thread keeps order), then the new one.
    (void)f.storage().append(rd1.entries);
    f.node().entries_persisted(last1);
    CHECK(f.raft().log().term_or_zero(base + 1) == t2);
    CHECK(f.raft().log().durable_last() == base);  // the report did not cover the new entry
    (void)f.storage().append(rd2.entries);
    if (rd2.hard_state) f.storage().set_hard_state(*rd2.hard_state);
    f.node().advance();
    CHECK(f.raft().log().durable_last() == base + 1);
    CHECK(f.raft().log().term_or_zero(base + 1) == t2);
}

TEST_CASE("s5_3_a_newer_snapshot_is_not_staged_before_the_received_one_is_installed") {
    Fixture f(2, opts().term(1).log({1}));
    auto chunk = [&](Index index, uint64_t offset, std::string data, bool done) {
        Message m;
        m.type = MessageType::kSnapshot;
        m.from = 1;
        m.to = 2;
        m.term = 1;
        m.snapshot = SnapshotMeta{index, 1, f.node().conf_state()};
        m.offset = offset;
        m.data = std::move(data);
        m.done = done;
        return m;
    };
    REQUIRE(f.step(chunk(10, 0, "aaaa", false)));
    REQUIRE(f.step(chunk(10, 4, "bb", true)));  // complete: to be installed with the Ready
    // The leader moved on to a newer snapshot before this node took its Ready (found by the
    // simulation: the new transfer's first chunk replaced the staged bytes of the first).
    REQUIRE(f.step(chunk(12, 0, "cccc", false)));
    Ready rd = f.node().ready();
    REQUIRE(rd.snapshot);
    CHECK(rd.snapshot->index == 10);
    REQUIRE(rd.snapshot_chunks.size() == 2);
    for (const SnapshotChunk& c : rd.snapshot_chunks)
        CHECK(c.meta.index == 10);
    CHECK(rd.snapshot_chunks.back().done);
}

TEST_CASE("s10_2_a_caught_up_follower_is_told_the_commit_quietly_and_does_not_answer") {
    Config lc = test_config(1);
    lc.quiet_commit_notices = true;
    Fixture f(1, opts(), lc);
    replicating_leader(f);
    auto id = f.node().propose(Payload(std::string("v")));
    REQUIRE(id);
    f.drain();
    // Node 2's acknowledgement commits the entry (with the leader's durable copy): the
    // notice to 2 is quiet, the one to 3 is not, since 3 is not known to hold the entry.
    REQUIRE(f.step(ack(2, 1, 1, id->index)));
    CHECK(f.raft().log().committed() == id->index);
    Ready rd = f.node().ready();
    auto notices = filter(rd.messages, MessageType::kAppend);
    REQUIRE(notices.size() == 2);
    for (const Message& m : notices) {
        CHECK(m.commit == id->index);
        if (m.to == 2) CHECK(m.quiet);
        if (m.to == 2) CHECK(m.entries.empty());
        if (m.to == 3) CHECK_FALSE(m.quiet);
    }
    f.node().advance();

    // The follower side: a quiet notice moves the commit index and sends nothing; a quiet
    // notice that does not match is still rejected, so the leader learns of it.
    Config fc = test_config(2);
    fc.quiet_commit_notices = true;
    Fixture g(2, opts().term(1).log({1, 1}), fc);
    Message n = append(1, 2, 1, 2, 1, 2, {});
    n.quiet = true;
    REQUIRE(g.step(n));
    CHECK(g.raft().log().committed() == 2);
    CHECK(g.raft().outbox().empty());
    Message bad = append(1, 2, 1, 5, 1, 5, {});
    bad.quiet = true;
    REQUIRE(g.step(bad));
    REQUIRE(g.raft().outbox().size() == 1);
    CHECK(g.raft().outbox()[0].msg.reject);
}

TEST_CASE("figure2_follower_acknowledges_entries_only_after_persisting_them") {
    Fixture f(2, opts().term(1).log({1}));
    REQUIRE(f.step(append(1, 2, 1, 1, 1, 1, {entry(2, 1, "a")})));
    Ready rd = f.node().ready();
    CHECK(rd.entries.size() == 1);
    CHECK(rd.messages.empty());
    REQUIRE(rd.persisted_messages.size() == 1);
    CHECK(rd.persisted_messages[0].type == MessageType::kAppendResponse);
    CHECK(rd.persisted_messages[0].index == 2);
    (void)f.storage().append(rd.entries);
    if (rd.hard_state) f.storage().set_hard_state(*rd.hard_state);
    f.node().advance();
}

TEST_CASE("s10_2_follower_in_probe_state_gets_one_append_at_a_time") {
    Fixture f(1);
    make_leader(f);  // 2 and 3 probing; the noop went out once
    for (int i = 0; i < 3; ++i)
        REQUIRE(f.node().propose(Payload(std::string("p"))));
    auto apps = filter(f.drain(), MessageType::kAppend);
    CHECK(apps.empty());  // each follower still has its probe unanswered
    // A heartbeat answer unpauses the probe.
    REQUIRE(f.step(msg(MessageType::kHeartbeatResponse, 2, 1, 1)));
    apps = filter(f.drain(), MessageType::kAppend);
    REQUIRE(apps.size() == 1);
    CHECK(apps[0].to == 2);
}

TEST_CASE("s10_2_inflight_window_limits_appends_in_flight_by_count") {
    Config c = test_config(1);
    c.max_inflight_msgs = 2;
    Fixture f(1, opts(), c);
    make_leader(f);
    ack_all(f, 2);  // 2 replicates
    for (int i = 0; i < 5; ++i)
        REQUIRE(f.node().propose(Payload(std::string("p"))));
    auto to2 = [](const std::vector<Message>& ms) {
        std::vector<Message> out;
        for (const Message& m : filter(ms, MessageType::kAppend))
            if (m.to == 2) out.push_back(m);
        return out;
    };
    auto apps = to2(f.drain());
    REQUIRE(apps.size() == 2);
    CHECK(apps[0].entries[0].index == 2);
    CHECK(apps[1].entries[0].index == 3);
    // Freeing one slot lets the rest go out in one append (the window counts messages).
    REQUIRE(f.step(ack(2, 1, 1, 2)));
    apps = to2(f.drain());
    REQUIRE(apps.size() == 1);
    CHECK(apps[0].index == 3);
    CHECK(apps[0].entries.size() == 3);
}

TEST_CASE("s10_2_inflight_window_limits_appends_in_flight_by_bytes") {
    Config c = test_config(1);
    c.max_inflight_bytes = 200;
    Fixture f(1, opts(), c);
    make_leader(f);
    ack_all(f, 2);
    for (int i = 0; i < 5; ++i)
        REQUIRE(f.node().propose(bytes(100)));
    size_t n = 0;
    for (const Message& m : filter(f.drain(), MessageType::kAppend))
        n += m.to == 2;
    // 124 bytes each with overhead: the second one reaches the limit and pauses the window.
    CHECK(n == 2);
    auto st = f.node().status();
    CHECK(st.progress[2].inflight == 2);
}

TEST_CASE("s10_2_append_carries_at_most_max_size_per_msg_entry_bytes") {
    Config c = test_config(1);
    c.max_size_per_msg = 60;  // two 26-byte entries
    Fixture f(1, opts().term(1).log({1, 1, 1, 1, 1, 1}), c);
    make_leader(f);
    // 2 acknowledges a prefix, so the leader must send entries 2..7 to it.
    REQUIRE(f.step(ack(2, 1, 2, 1)));
    auto apps = filter(f.drain(), MessageType::kAppend);
    CHECK(apps.size() >= 3);
    for (const Message& m : apps) {
        uint64_t b = 0;
        for (const Entry& e : m.entries)
            b += e.byte_size();
        CHECK((b <= 60 || m.entries.size() == 1));
    }
}

TEST_CASE("s10_2_heartbeat_commit_never_exceeds_what_the_follower_matched") {
    Fixture f(1);
    make_leader(f);
    ack_all(f, 2);  // commit 1 with 2
    REQUIRE(f.node().propose(Payload(std::string("a"))));
    f.drain();
    ack_all(f, 2);  // commit 2; 3 has matched nothing
    REQUIRE(f.raft().log().committed() == 2);
    f.tick(1);
    auto hbs = filter(f.drain(), MessageType::kHeartbeat);
    REQUIRE(hbs.size() == 2);
    for (const Message& m : hbs)
        CHECK(m.commit == (m.to == 2 ? 2u : 0u));
}

TEST_CASE("s10_2_proposals_beyond_max_uncommitted_bytes_are_refused_with_busy") {
    Config c = test_config(1);
    c.max_uncommitted_bytes = 100;
    Fixture f(1, opts(), c);
    make_leader(f);
    REQUIRE(f.node().propose(bytes(60)));
    auto r = f.node().propose(bytes(60));
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == raftd::Code::kBusy);
    CHECK(f.raft().log().last_index() == 2);  // nothing was appended
    // Once committed and applied the budget is free again.
    f.drain();
    ack_all(f, 2);
    CHECK(f.raft().uncommitted_bytes() == 0);
    CHECK(f.node().propose(bytes(60)));
}

TEST_CASE("s10_2_a_single_proposal_larger_than_max_uncommitted_bytes_is_accepted_alone") {
    Config c = test_config(1);
    c.max_uncommitted_bytes = 100;
    Fixture f(1, opts(), c);
    make_leader(f);
    CHECK(f.node().propose(bytes(500)));  // otherwise it could never be proposed
    CHECK_FALSE(f.node().propose(bytes(1)));
}

TEST_CASE("s10_2_config_entries_do_not_leak_from_the_uncommitted_bytes_budget") {
    Config c = test_config(1);
    c.max_uncommitted_bytes = 1000;
    Fixture f(1, opts().voters({1}), c);
    make_leader(f);
    f.drain();
    for (NodeId n = 10; n < 60; ++n) {
        ConfChange cc{ConfTransition::kAuto, {{ConfChangeType::kAddLearner, n, "h:1"}}};
        REQUIRE(f.node().propose_conf_change(cc));
        f.drain();
    }
    CHECK(f.raft().uncommitted_bytes() == 0);
    CHECK(f.node().propose(bytes(900)));
}

TEST_CASE("s5_3_leader_sends_a_snapshot_to_a_follower_whose_next_entry_was_compacted") {
    Cluster c(test_config(1));
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    c.isolate(3);
    for (int i = 0; i < 5; ++i)
        REQUIRE(c.peer(1).node().propose(Payload("v" + std::to_string(i))));
    c.stabilize();
    Index applied = c.peer(1).applied_index();
    REQUIRE(c.peer(1).compact(applied));
    c.heal();
    c.tick(1);
    c.stabilize();
    CHECK(c.peer(3).storage().snapshot_meta().index == applied);
    CHECK(c.peer(3).applied_index() == c.peer(1).applied_index());
    CHECK(c.peer(3).applied().back().data.view() == "v4");
}

TEST_CASE("s5_3_stale_append_response_does_not_move_progress_backwards") {
    Fixture f(1);
    make_leader(f);
    ack_all(f, 2);
    for (int i = 0; i < 3; ++i)
        REQUIRE(f.node().propose(Payload(std::string("p"))));
    f.drain();
    REQUIRE(f.step(ack(2, 1, 1, 4)));
    f.drain();
    // A reordered rejection for an earlier append is ignored.
    Message rej = msg(MessageType::kAppendResponse, 2, 1, 1);
    rej.reject = true;
    rej.index = 1;
    rej.reject_hint = 1;
    REQUIRE(f.step(rej));
    f.drain();
    auto st = f.node().status();
    CHECK(st.progress[2].match == 4);
    CHECK(st.progress[2].state == ProgressState::kReplicate);
}

TEST_CASE("s10_2_a_full_window_of_lost_appends_recovers_when_the_follower_answers_a_heartbeat") {
    Config c = test_config(1);
    c.max_inflight_msgs = 2;
    Fixture f(1, opts(), c);
    make_leader(f);
    ack_all(f, 2);
    for (int i = 0; i < 4; ++i)
        REQUIRE(f.node().propose(Payload(std::string("p"))));
    f.drain();  // two appends to 2 went out and were lost; the window is full
    REQUIRE(f.node().status().progress[2].inflight == 2);
    // 2 is alive: it answers a heartbeat. The leader must send again rather than wait forever.
    REQUIRE(f.step(msg(MessageType::kHeartbeatResponse, 2, 1, 1)));
    auto apps = filter(f.drain(), MessageType::kAppend);
    REQUIRE(apps.size() == 1);
    CHECK(apps[0].to == 2);
    // 2 does not have what precedes it and rejects; the leader goes back to what 2 has.
    Message rej = msg(MessageType::kAppendResponse, 2, 1, 1);
    rej.reject = true;
    rej.index = apps[0].index;
    rej.reject_hint = 1;
    rej.log_term = 1;
    REQUIRE(f.step(rej));
    apps = filter(f.drain(), MessageType::kAppend);
    REQUIRE(apps.size() == 1);
    CHECK(apps[0].index == 1);
    CHECK(apps[0].entries.size() == 4);
}
