#include "daemon/pending.h"

#include <doctest/doctest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "daemon/testing/util.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

constexpr raft::Term kAnyTerm = std::numeric_limits<raft::Term>::max();

// Every answer the table gave, by the request's (index, term).
struct Answers {
    std::map<std::pair<raft::Index, raft::Term>, std::vector<Resolution>> by_id;

    PendingTable::Resolve at(raft::Index i, raft::Term t) {
        return [this, i, t](const Resolution& r) { by_id[{i, t}].push_back(r); };
    }
    // The one answer of (i, t); fails the test unless there is exactly one.
    Resolution once(raft::Index i, raft::Term t) const {
        auto it = by_id.find({i, t});
        REQUIRE_MESSAGE(it != by_id.end(), "no answer for " << i << "/" << t);
        REQUIRE_MESSAGE(it->second.size() == 1,
                        "answers for " << i << "/" << t << ": " << it->second.size());
        return it->second.front();
    }
    bool answered(raft::Index i, raft::Term t) const { return by_id.count({i, t}) != 0; }
};

}  // namespace

TEST_CASE("a proposal made after regaining leadership is answered at its own index and term") {
    // Issue 13: this node led term 5 and proposed 101..110, lost leadership (the term-6
    // leader wrote 101 and 102), won term 7 and proposed Q, which landed at 103 over the
    // orphan there. The orphans 104..110 sit behind Q in proposal order.
    PendingTable table;
    Answers a;
    for (raft::Index i = 101; i <= 110; ++i)
        table.add({i, 5}, a.at(i, 5));
    table.orphan(kAnyTerm, 1000, "lost leadership");  // a follower in term 6
    table.orphan(7, 1000, "lost leadership");         // leader again, in term 7
    table.add({103, 7}, a.at(103, 7));                // Q

    table.committed({101, 6});
    table.committed({102, 6});
    table.committed({103, 7});
    CHECK(a.once(103, 7).fate == Fate::kCommitted);
    CHECK(a.once(103, 7).id == raft::EntryId{103, 7});
    for (raft::Index i = 101; i <= 103; ++i)
        CHECK(a.once(i, 5).fate == Fate::kNotCommitted);
    // Nothing is known yet about 104..110.
    for (raft::Index i = 104; i <= 110; ++i)
        CHECK_FALSE(a.answered(i, 5));

    // Term 7 goes on at 104..111: a different entry committed at each orphan's index.
    for (raft::Index i = 104; i <= 111; ++i)
        table.committed({i, 7});
    for (raft::Index i = 104; i <= 110; ++i)
        CHECK(a.once(i, 5).fate == Fate::kNotCommitted);
    CHECK(a.once(103, 7).fate == Fate::kCommitted);  // still exactly one answer
    CHECK(table.empty());
}

TEST_CASE("orphans of an earlier term of this leader expire even while it leads again") {
    PendingTable table;
    Answers a;
    for (raft::Index i = 101; i <= 110; ++i)
        table.add({i, 5}, a.at(i, 5));
    table.orphan(kAnyTerm, 1000, "lost leadership");
    table.orphan(7, 2000, "lost leadership");  // does not move the deadline already set
    table.add({103, 7}, a.at(103, 7));
    table.committed({101, 6});
    table.committed({102, 6});
    table.committed({103, 7});

    table.expire(999);
    CHECK_FALSE(a.answered(104, 5));
    table.expire(1000);
    for (raft::Index i = 104; i <= 110; ++i) {
        CHECK(a.once(i, 5).fate == Fate::kUnknown);
        CHECK(a.once(i, 5).why == "lost leadership");
    }
    CHECK(table.empty());
}

TEST_CASE("an entry of the same term committing at the index is this request's") {
    PendingTable table;
    Answers a;
    table.add({7, 2}, a.at(7, 2));
    table.add({8, 2}, a.at(8, 2));
    table.committed({7, 2});
    CHECK(a.once(7, 2).fate == Fate::kCommitted);
    CHECK_FALSE(a.answered(8, 2));
    table.committed({8, 3});
    CHECK(a.once(8, 2).fate == Fate::kNotCommitted);
    CHECK(a.once(8, 2).why.find("term 3") != std::string::npos);
}

TEST_CASE("requests a snapshot was installed over are answered by what Raft allows") {
    PendingTable table;
    Answers a;
    // Orphans of term 5 under a snapshot the term-8 leader took: they may have committed.
    for (raft::Index i = 101; i <= 105; ++i)
        table.add({i, 5}, a.at(i, 5));
    // Proposals of term 8 (only term 8's leader made entries of term 8), and of term 9
    // (terms never decrease along a log, so index 150 holds a term <= 8 there).
    table.add({150, 8}, a.at(150, 8));
    table.add({150, 9}, a.at(150, 9));
    table.add({200, 6}, a.at(200, 6));  // at the snapshot's own index, another term
    table.add({201, 8}, a.at(201, 8));  // after it: the commit stream decides

    table.snapshot_installed({200, 8});
    for (raft::Index i = 101; i <= 105; ++i) {
        CHECK(a.once(i, 5).fate == Fate::kUnknown);
        CHECK_FALSE(a.once(i, 5).stopping);
    }
    CHECK(a.once(150, 8).fate == Fate::kCommitted);
    CHECK(a.once(150, 9).fate == Fate::kNotCommitted);
    CHECK(a.once(200, 6).fate == Fate::kNotCommitted);
    CHECK_FALSE(a.answered(201, 8));
    CHECK(proposal_reply(a.once(103, 5)).error().code == ipc::ErrorCode::kIndeterminate);

    table.committed({201, 8});
    CHECK(a.once(201, 8).fate == Fate::kCommitted);
    CHECK(table.empty());
}

TEST_CASE("a deadline passing leaves the fate unknown") {
    PendingTable table;
    Answers a;
    table.add({5, 2}, a.at(5, 2));  // the leader's own: no deadline
    table.add({6, 2}, a.at(6, 2), 300, "conf change late");
    table.expire(1'000'000);
    CHECK_FALSE(a.answered(5, 2));
    CHECK(a.once(6, 2).fate == Fate::kUnknown);
    CHECK(a.once(6, 2).why == "conf change late");

    table.orphan(3, 500, "late");  // a leader of term 3: term 2's requests are orphans
    table.expire(499);
    CHECK_FALSE(a.answered(5, 2));
    table.expire(500);
    CHECK(a.once(5, 2).fate == Fate::kUnknown);
    CHECK(proposal_reply(a.once(5, 2)).error().code == ipc::ErrorCode::kIndeterminate);
    CHECK(table.empty());
}

TEST_CASE("orphan gives no deadline to the requests of the term this node leads") {
    PendingTable table;
    Answers a;
    table.add({5, 4}, a.at(5, 4));
    table.orphan(4, 10, "late");
    table.expire(1'000);
    CHECK_FALSE(a.answered(5, 4));
    table.orphan(kAnyTerm, 20, "late");
    table.expire(1'000);
    CHECK(a.once(5, 4).fate == Fate::kUnknown);
}

TEST_CASE("stopping answers everything left once, fate unknown") {
    PendingTable table;
    Answers a;
    table.add({5, 2}, a.at(5, 2));
    table.add({6, 2}, a.at(6, 2), 100);
    table.fail_all("raftd is stopping");
    for (raft::Index i : {5, 6}) {
        CHECK(a.once(i, 2).fate == Fate::kUnknown);
        CHECK(a.once(i, 2).stopping);
    }
    CHECK(proposal_reply(a.once(5, 2)).error().code == ipc::ErrorCode::kShuttingDown);
    table.fail_all("again");
    table.committed({5, 2});
    CHECK(a.by_id[{5, 2}].size() == 1);
}

TEST_CASE("a resolve callback may add a request; it waits for its own entry") {
    PendingTable table;
    Answers a;
    table.add({5, 2}, [&](const Resolution&) { table.add({9, 2}, a.at(9, 2)); });
    table.committed({5, 2});
    CHECK(table.size() == 1);
    CHECK_FALSE(a.answered(9, 2));
    table.committed({9, 2});
    CHECK(a.once(9, 2).fate == Fate::kCommitted);
}

TEST_CASE("proposal replies say what is known") {
    ipc::Outcome<ipc::ProposeReply> ok = proposal_reply({Fate::kCommitted, {4, 2}, "", false});
    REQUIRE(ok.ok());
    CHECK(ok.value().index == 4);
    CHECK(ok.value().term == 2);
    auto lost = proposal_reply({Fate::kNotCommitted, {4, 2}, "replaced", false});
    CHECK(lost.error().code == ipc::ErrorCode::kUnavailable);
    CHECK(lost.error().message == "replaced");
    auto maybe = proposal_reply({Fate::kUnknown, {4, 2}, "late", false});
    CHECK(maybe.error().code == ipc::ErrorCode::kIndeterminate);
    auto stop = proposal_reply({Fate::kUnknown, {4, 2}, "stopping", true});
    CHECK(stop.error().code == ipc::ErrorCode::kShuttingDown);
}
