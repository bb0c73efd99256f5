// The pending table fed by real raft nodes (raft/testing's deterministic cluster), the way
// the host feeds it: each committed entry as it is applied, each installed snapshot first.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/pending.h"
#include "daemon/testing/util.h"
#include "raft/testing/cluster.h"
#include "raft/testing/fixture.h"

using namespace raftd;
using namespace raftd::daemon;
using raft::testing::Cluster;

namespace {

// Node `id`'s pending table, wired to its peer, and every answer it gave.
struct Watched {
    PendingTable table;
    std::map<std::pair<raft::Index, raft::Term>, std::vector<Fate>> answers;

    Watched(Cluster& c, raft::NodeId id) {
        c.peer(id).on_apply = [this](raft::NodeId, const raft::Entry& e) {
            table.committed({e.index, e.term});
        };
        c.peer(id).on_restore = [this](raft::NodeId, const raft::SnapshotMeta& m,
                                       const std::vector<raft::Entry>&) {
            table.snapshot_installed({m.index, m.term});
        };
    }
    raft::EntryId propose(Cluster& c, raft::NodeId id, const std::string& data) {
        auto r = c.peer(id).node().propose(raft::Payload(data));
        REQUIRE(r);
        const raft::EntryId e = *r;
        table.add(e, [this, e](const Resolution& res) {
            answers[{e.index, e.term}].push_back(res.fate);
        });
        return e;
    }
    std::vector<Fate> of(raft::EntryId e) const {
        auto it = answers.find({e.index, e.term});
        return it == answers.end() ? std::vector<Fate>{} : it->second;
    }
};

using Fates = std::vector<Fate>;

// Nodes 1-3 with 1 as leader, whose pending table `w` watches.
struct OrphanedLeader {
    Cluster c{raft::testing::test_config(1)};
    Watched w{booted(c), 1};

    static Cluster& booted(Cluster& c) {
        REQUIRE(c.bootstrap({1, 2, 3}));
        REQUIRE(c.elect(1));
        return c;
    }

    // Leader 1 is cut off and takes `orphans` proposals that can never commit, while 2 and 3
    // elect 2 and commit `others` entries of their own over the same indexes. Returns the
    // orphans, in proposal order.
    std::vector<raft::EntryId> orphan(int orphans, int others) {
        c.isolate(1);
        std::vector<raft::EntryId> out;
        for (int i = 0; i < orphans; ++i)
            out.push_back(w.propose(c, 1, "orphan" + std::to_string(i)));
        c.stabilize();
        REQUIRE(c.elect(2));  // 2 and 3 go on without node 1
        for (int i = 0; i < others; ++i)
            REQUIRE(c.peer(2).node().propose(raft::Payload(std::string("two"))));
        c.stabilize();
        return out;
    }
};

}  // namespace

TEST_CASE_FIXTURE(OrphanedLeader,
                  "a leader that lost and regained leadership answers its new proposal committed") {
    const std::vector<raft::EntryId> orphans = orphan(10, 2);
    c.heal();
    c.tick(2);
    c.stabilize();  // node 1 follows 2: its log is replaced up to 2's entries
    REQUIRE(c.elect(1));
    const raft::EntryId q = w.propose(c, 1, "Q");
    // The schedule: Q lands among the orphans' indexes, behind them in proposal order.
    REQUIRE(q.index > orphans.front().index);
    REQUIRE(q.index < orphans.back().index);
    c.stabilize();

    CHECK(w.of(q) == Fates{Fate::kCommitted});
    for (const raft::EntryId& o : orphans) {
        if (o.index <= q.index)
            CHECK(w.of(o) == Fates{Fate::kNotCommitted});
        else
            CHECK(w.of(o).empty());  // nothing committed at its index yet
    }
    // Node 1 goes on proposing past the orphans' indexes: each is answered exactly once.
    for (int i = 0; i < 10; ++i)
        w.propose(c, 1, "more");
    c.stabilize();
    for (const raft::EntryId& o : orphans)
        CHECK(w.of(o) == Fates{Fate::kNotCommitted});
    CHECK(w.of(q) == Fates{Fate::kCommitted});
    CHECK(w.table.empty());
}

TEST_CASE_FIXTURE(OrphanedLeader,
                  "proposals an installed snapshot covers are answered INDETERMINATE, once") {
    const std::vector<raft::EntryId> orphans = orphan(5, 6);
    const raft::Index applied = c.peer(2).applied_index();
    REQUIRE(applied >= orphans.back().index);
    REQUIRE(c.peer(2).compact(applied));
    c.heal();
    c.tick(2);
    c.stabilize();
    REQUIRE(c.peer(1).storage().snapshot_meta().index == applied);
    for (const raft::EntryId& o : orphans)
        CHECK(w.of(o) == Fates{Fate::kUnknown});
    // Entries committed after the snapshot say nothing more about them.
    REQUIRE(c.peer(2).node().propose(raft::Payload(std::string("after"))));
    c.stabilize();
    for (const raft::EntryId& o : orphans)
        CHECK(w.of(o) == Fates{Fate::kUnknown});
    CHECK(w.table.empty());
}
