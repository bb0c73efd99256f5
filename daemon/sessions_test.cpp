// The exactly-once session table and the leader's gate (docs/protocol.md, "Exactly-once
// proposals"): dedup, the seq window, deterministic eviction, the snapshot section and a
// table restored from it, and a retry that finds its uncommitted copy on a new leader.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/pending.h"
#include "daemon/sessions.h"
#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd;
using namespace raftd::daemon;
using raft::testing::Cluster;
using Verdict = SessionTable::Verdict;

namespace {

raft::Entry keyed(raft::Index i, raft::Term t, uint64_t client, uint64_t seq) {
    raft::Entry e;
    e.index = i;
    e.term = t;
    e.type = raft::EntryType::kData;
    e.data = raft::Payload(std::string("x"));
    e.session = {client, seq};
    return e;
}

raft::Entry plain(raft::Index i, raft::Term t) {
    raft::Entry e;
    e.index = i;
    e.term = t;
    return e;
}

// A log mixing clients, plain entries and out-of-order seqs; deterministic.
std::vector<raft::Entry> mixed_log(size_t n) {
    std::vector<raft::Entry> log;
    uint64_t next[7] = {};
    for (size_t i = 1; i <= n; i++) {
        const uint64_t client = 1 + (i * 2654435761u) % 7;
        if (i % 5 == 0) {
            log.push_back(plain(i, 1 + i / 50));
            continue;
        }
        uint64_t seq = ++next[client - 1];
        if (i % 11 == 0 && seq > 2) seq -= 2;  // a late retry of an older seq
        log.push_back(keyed(i, 1 + i / 50, client, seq));
    }
    return log;
}

}  // namespace

TEST_CASE("a committed key is answered with its first index and term; others are new") {
    SessionTable t({16, 8});
    t.apply(keyed(3, 1, 7, 1));
    t.apply(plain(4, 1));
    t.apply(keyed(5, 2, 7, 2));
    CHECK(t.applied() == 5);
    auto a = t.check({7, 1});
    CHECK(a.verdict == Verdict::kCommitted);
    CHECK(a.id == raft::EntryId{3, 1});
    CHECK(t.check({7, 2}).id == raft::EntryId{5, 2});
    CHECK(t.check({7, 3}).verdict == Verdict::kNew);
    CHECK(t.check({8, 1}).verdict == Verdict::kNew);
    // A second copy (which the gate never lets a leader append) does not move the answer.
    t.apply(keyed(6, 2, 7, 1));
    CHECK(t.check({7, 1}).id == raft::EntryId{3, 1});
}

TEST_CASE("a session keeps its window of highest seqs; a lower seq outside it is EXPIRED") {
    SessionTable t({16, 4});
    for (uint64_t s = 1; s <= 6; s++)
        t.apply(keyed(s, 1, 9, s));
    CHECK(t.check({9, 1}).verdict == Verdict::kExpired);
    CHECK(t.check({9, 2}).verdict == Verdict::kExpired);
    for (uint64_t s = 3; s <= 6; s++)
        CHECK(t.check({9, s}).verdict == Verdict::kCommitted);
    CHECK(t.check({9, 7}).verdict == Verdict::kNew);
    // Pipelined seqs commit out of order after a retry: a gap inside the window stays new,
    // and fills in when its seq commits.
    t.apply(keyed(7, 1, 9, 9));
    CHECK(t.check({9, 8}).verdict == Verdict::kNew);
    t.apply(keyed(8, 1, 9, 8));
    CHECK(t.check({9, 8}).id == raft::EntryId{8, 1});
    // The window slid past 3 and 4 (5, 6, 8, 9 kept). 7 never committed and is above the
    // highest seq dropped (4), so it may still be appended.
    CHECK(t.check({9, 4}).verdict == Verdict::kExpired);
    CHECK(t.check({9, 7}).verdict == Verdict::kNew);
}

TEST_CASE("beyond max_sessions the least recently committed session is evicted and EXPIRED") {
    SessionTable t({2, 8});
    t.apply(keyed(1, 1, 100, 1));  // A
    t.apply(keyed(2, 1, 200, 1));  // B
    t.apply(keyed(3, 1, 100, 2));  // A again: B is now the least recent
    t.apply(keyed(4, 1, 300, 1));  // C evicts B
    CHECK(t.sessions() == 2);
    CHECK(t.check({200, 1}).verdict == Verdict::kExpired);
    CHECK(t.check({200, 2}).verdict == Verdict::kExpired);  // the session cannot start over
    CHECK(t.check({100, 2}).verdict == Verdict::kCommitted);
    CHECK(t.check({300, 1}).verdict == Verdict::kCommitted);
    // An entry of an evicted session that commits later changes nothing.
    t.apply(keyed(5, 1, 200, 3));
    CHECK(t.check({200, 3}).verdict == Verdict::kExpired);
    // Evicted ids are remembered for max_sessions further evictions, then forgotten.
    t.apply(keyed(6, 1, 400, 1));  // evicts A
    CHECK(t.check({200, 1}).verdict == Verdict::kExpired);
    t.apply(keyed(7, 1, 500, 1));  // evicts C; B falls out of the remembered ids
    CHECK(t.check({200, 1}).verdict == Verdict::kNew);
    CHECK(t.check({100, 1}).verdict == Verdict::kExpired);
    CHECK(t.evicted() == 2);
}

TEST_CASE("two nodes applying the same log hold the same table, evictions included") {
    const std::vector<raft::Entry> log = mixed_log(3000);
    SessionTable a({4, 16}), b({4, 16});
    for (const auto& e : log)
        a.apply(e);
    for (const auto& e : log)
        b.apply(e);
    CHECK(a.encode() == b.encode());
    CHECK(a.sessions() == 4);
    CHECK(a.evicted() > 0);
}

TEST_CASE("a table restored from a snapshot section and the log after it is the same table") {
    const std::vector<raft::Entry> log = mixed_log(2000);
    const SessionTable::Limits lim{5, 32};
    for (size_t snap : {size_t{0}, size_t{1}, size_t{777}, size_t{1999}, size_t{2000}}) {
        CAPTURE(snap);
        SessionTable whole(lim), at_snap(lim);
        for (const auto& e : log)
            whole.apply(e);
        for (size_t i = 0; i < snap; i++)
            at_snap.apply(log[i]);
        // Through the section framing, as a snapshot's data holds it.
        const std::string data = session_section(at_snap.encode()) + "application bytes";
        const auto len = session_section_length(data.substr(0, kSessionSectionHeader));
        REQUIRE(len);
        const std::string body = data.substr(kSessionSectionHeader, *len);
        CHECK(session_section_intact(data.substr(0, kSessionSectionHeader), body));
        CHECK(data.substr(kSessionSectionHeader + *len) == "application bytes");
        auto restored = SessionTable::decode(body, lim);
        REQUIRE(restored);
        for (size_t i = snap; i < log.size(); i++)
            restored->apply(log[i]);
        CHECK(restored->encode() == whole.encode());
    }
}

TEST_CASE("snapshot data without a section, or with a damaged one, is the application's") {
    CHECK_FALSE(session_section_length("plain application snapshot bytes"));
    CHECK_FALSE(session_section_length("raftdses"));  // too short for the header
    SessionTable t({4, 4});
    t.apply(keyed(1, 1, 5, 1));
    std::string data = session_section(t.encode());
    data.back() ^= 1;
    const auto len = session_section_length(data);
    REQUIRE(len);
    CHECK_FALSE(session_section_intact(data.substr(0, kSessionSectionHeader),
                                       data.substr(kSessionSectionHeader, *len)));
    CHECK_FALSE(SessionTable::decode("\x01\x00", {4, 4}));
}

TEST_CASE("a node configured smaller trims a restored table to its limits") {
    SessionTable big({8, 8});
    for (uint64_t c = 1; c <= 6; c++)
        for (uint64_t s = 1; s <= 8; s++)
            big.apply(keyed(c * 10 + s, 1, c, s));
    auto small = SessionTable::decode(big.encode(), {3, 2});
    REQUIRE(small);
    CHECK(small->sessions() == 3);
    CHECK(small->check({1, 8}).verdict == Verdict::kExpired);  // evicted: least recent
    CHECK(small->check({6, 8}).verdict == Verdict::kCommitted);
    CHECK(small->check({6, 6}).verdict == Verdict::kExpired);  // out of a 2-seq window
}

// Nodes 1-3, leader 1. Node 1 appends a keyed entry that reaches node 2 only and is not
// committed; node 1 is then cut off and node 2 elected. A retry of the same key at node 2
// must wait for that copy, not append a second one that would commit as well.
TEST_CASE("a retry finding its uncommitted copy on a new leader waits for it, never appends") {
    Cluster c{raft::testing::test_config(1)};
    REQUIRE(c.bootstrap({1, 2, 3}));
    REQUIRE(c.elect(1));
    SessionGate gate2({16, 16});
    PendingTable pending2;
    c.peer(2).on_apply = [&](raft::NodeId, const raft::Entry& e) {
        gate2.committed(e);
        pending2.committed({e.index, e.term});
    };
    const raft::SessionKey key{42, 1};

    c.cut(1, 3);  // the entry reaches node 2 only
    c.cut(2, 1);  // and node 1 never hears that it did: not committed
    auto first = c.peer(1).node().propose(raft::Payload(std::string("once")), key);
    REQUIRE(first);
    c.stabilize();
    REQUIRE(c.peer(2).node().raft().log().last_index() >= first->index);
    REQUIRE(c.peer(2).node().raft().log().committed() < first->index);

    c.heal();
    c.isolate(1);
    // Node 2 wins the election; the retry arrives before its first Append goes out.
    REQUIRE(c.peer(2).node().campaign());
    for (int i = 0; i < 10 && c.peer(2).node().role() != raft::Role::kLeader; ++i) {
        c.process_ready(2);
        c.deliver_to(3);
        c.process_ready(3);
        c.deliver_to(2);
    }
    REQUIRE(c.peer(2).node().role() == raft::Role::kLeader);
    REQUIRE(c.peer(2).node().raft().log().committed() < first->index);
    REQUIRE(gate2.role_changed(c.peer(2).node(), c.peer(2).applied_index()));
    const SessionGate::Decision d = gate2.decide(key, true);
    if (d.action == SessionGate::Action::kAppend) {
        // What a gate that did not index the new leader's log would do: a second copy.
        auto again = c.peer(2).node().propose(raft::Payload(std::string("once")), key);
        REQUIRE(again);
        gate2.appended(key, *again);
    }
    CHECK(d.action == SessionGate::Action::kAwait);
    CHECK(d.id == *first);
    std::vector<Fate> answers;
    pending2.add(d.id, [&](const Resolution& r) { answers.push_back(r.fate); });
    c.heal();
    c.stabilize();

    int copies = 0;
    for (const raft::Entry& e : c.peer(2).applied())
        copies += e.session == key;
    CHECK(copies == 1);
    CHECK(answers == std::vector<Fate>{Fate::kCommitted});
    CHECK(gate2.decide(key, true).action == SessionGate::Action::kCommitted);
    CHECK(gate2.decide(key, true).id == *first);
    CHECK(gate2.open() == 0);
}
