#include "daemon/commit_stream.h"

#include <doctest/doctest.h>

#include "raft/confchange_codec.h"
#include "raft/memory_storage.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

raft::Entry config(raft::Index i, raft::ConfChangeType type, raft::NodeId node,
                   const std::string& addr) {
    raft::ConfChange cc;
    cc.changes.push_back({type, node, addr});
    return {i, 2, raft::EntryType::kConfig, raft::Payload(raft::encode_conf_change(cc))};
}

raft::Entry data(raft::Index i) {
    return {i, 2, raft::EntryType::kData, raft::Payload(std::string("d"))};
}

// A log after a snapshot at 4 (voter 1), then 5..8 with two config entries.
struct Log {
    raft::MemoryStorage s;
    Log() {
        raft::SnapshotMeta m{4, 1, {}};
        m.conf.voters = {1};
        m.conf.addrs = {{1, "h1:1"}};
        REQUIRE(s.apply_snapshot(m, "app"));
        REQUIRE(s.append({data(5), config(6, raft::ConfChangeType::kAddNode, 2, "h2:1"), data(7),
                          config(8, raft::ConfChangeType::kAddLearner, 3, "h3:1")}));
    }
};

}  // namespace

TEST_CASE("each config entry in the commit stream carries the configuration it establishes") {
    Log log;
    CommitReader reader(log.s);
    // Read from the far end first: the replay runs from the snapshot's configuration.
    auto last = reader.read(8, 8, 1 << 20);
    REQUIRE(last);
    REQUIRE(last->size() == 1);
    REQUIRE((*last)[0].config);
    CHECK((*last)[0].config->members.size() == 3);

    auto all = reader.read(5, 8, 1 << 20);
    REQUIRE(all);
    REQUIRE(all->size() == 4);
    CHECK_FALSE((*all)[0].config);
    REQUIRE((*all)[1].config);
    CHECK((*all)[1].config->members.size() == 2);
    CHECK((*all)[1].config->members[1] == ipc::MemberInfo{2, "h2:1", true, false, {}});
    CHECK((*all)[3].config->members[2] == ipc::MemberInfo{3, "h3:1", false, false, {}});
}

TEST_CASE("the commit stream reads nothing above the commit index") {
    Log log;
    CommitReader reader(log.s);
    auto upto6 = reader.read(5, 6, 1 << 20);
    REQUIRE(upto6);
    CHECK(upto6->size() == 2);
    auto above = reader.read(7, 6, 1 << 20);
    REQUIRE_FALSE(above);
    CHECK(above.status().code() == Code::kNotFound);
}
