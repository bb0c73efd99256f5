// Storage's default config_entries and what raft reads from storage when it starts: only a
// bounded page at a time, so memory after a restart does not follow the log's size.
#include "raft/storage.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "raft/confchange_codec.h"
#include "raft/memory_storage.h"
#include "raft/node.h"

using namespace raftd;
using namespace raftd::raft;

namespace {

// Counts what raft reads through entries().
class CountingStorage final : public Storage {
  public:
    explicit CountingStorage(const MemoryStorage& s) : s_(s) {}
    InitialState initial_state() const override { return s_.initial_state(); }
    Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override {
        auto r = s_.entries(lo, hi, max_bytes);
        if (r) {
            uint64_t bytes = 0;
            for (const Entry& e : *r)
                bytes += e.byte_size();
            largest_read = std::max(largest_read, bytes);
            total_read += bytes;
        }
        return r;
    }
    Result<Term> term(Index i) const override { return s_.term(i); }
    Index first_index() const override { return s_.first_index(); }
    Index last_index() const override { return s_.last_index(); }
    SnapshotMeta snapshot_meta() const override { return s_.snapshot_meta(); }

    mutable uint64_t largest_read = 0;
    mutable uint64_t total_read = 0;

  private:
    const MemoryStorage& s_;
};

Entry add_voter(Index i, NodeId id) {
    ConfChange cc;
    cc.changes.push_back({ConfChangeType::kAddNode, id, "h" + std::to_string(id) + ":1"});
    return Entry{i, 1, EntryType::kConfig, Payload(encode_conf_change(cc))};
}

}  // namespace

TEST_CASE("a_restarted_node_reads_its_committed_log_in_bounded_pages_to_learn_its_configuration") {
    // 48 MiB of committed data entries with two membership changes among them.
    MemoryStorage ms;
    std::vector<Entry> ents{bootstrap_entry({{1, "h1:1"}, {2, "h2:1"}, {3, "h3:1"}})};
    const std::string blob(64 * 1024, 'x');
    for (Index i = 2; i <= 800; i++) {
        if (i == 300)
            ents.push_back(add_voter(i, 4));
        else if (i == 700)
            ents.push_back(add_voter(i, 5));
        else
            ents.push_back(Entry{i, 1, EntryType::kData, Payload(blob)});
    }
    REQUIRE(ms.append(ents).is_ok());
    ms.set_hard_state(HardState{1, 0, 800});
    CountingStorage cs(ms);
    Config cfg;
    cfg.id = 1;
    cfg.applied = 800;
    auto n = Node::create(cfg, cs, nullptr);
    REQUIRE_MESSAGE(n.is_ok(), n.status().to_string());
    CHECK((*n)->conf_state().voters == std::vector<NodeId>{1, 2, 3, 4, 5});
    // One page is at most 4 MiB (plus the entry that crosses it); the old code read the
    // whole committed log in one call.
    CHECK(cs.largest_read <= (4u << 20) + blob.size() + 24);
    CHECK(cs.total_read >= 48u << 20);  // the default pages through everything once
}
