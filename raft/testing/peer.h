// Peer: one simulated replica for tests, the scenario driver and the simulator: a Node, its
// MemoryStorage (what survives a crash), the outstanding Ready, a snapshot staging area and a
// toy application whose state is the list of entries it applied.
//
// Owns: the persistence contract as the daemon must implement it: immediate messages leave
// when a Ready is taken, the rest only after persist(), and a crash drops whatever was not
// persisted.
// Never: touches the network; it hands messages back to its caller.
// Thread rules: single-threaded test code.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/node.h"

namespace raftd::raft::testing {

class Peer {
  public:
    Peer(NodeId id, const Config& cfg);

    NodeId id() const { return cfg_.id; }
    Config& config() { return cfg_; }
    // Writes the bootstrap entry (a new cluster with these voters) into storage.
    void bootstrap(const std::vector<Member>& voters);
    // (Re)creates the Node from storage; the application restarts from the snapshot.
    Status start();
    // Loses everything not persisted: the Node, the outstanding Ready, the staging area and
    // the application's state beyond the snapshot.
    void crash();
    bool up() const { return node_ != nullptr; }
    Node& node() { return *node_; }
    const Node& node() const { return *node_; }
    MemoryStorage& storage() { return storage_; }
    const MemoryStorage& storage() const { return storage_; }

    bool has_pending() const { return pending_.has_value(); }
    const std::optional<Ready>& pending() const { return pending_; }
    // Takes a Ready when none is outstanding; its immediate messages are appended to `out`.
    // With async_leader, a leader's Ready whose only write is new entries is handled at once
    // (Node::advance_except_entries) and its entries wait in a write queue instead.
    bool take_ready(std::vector<Message>& out);
    // The last Ready taken (for checks).
    const Ready& last_taken() const { return taken_; }
    // Leader entries waiting to be written, oldest first; complete_write() writes the oldest
    // and reports it (Node::entries_persisted). persist() writes them all first (one writer
    // thread keeps order); crash() loses them.
    bool async_leader = false;
    bool has_write() const { return !writes_.empty(); }
    Status complete_write();
    // Makes the outstanding Ready durable, appends its persisted messages to `out`, applies
    // its committed entries and read states, then advances.
    Status persist(std::vector<Message>& out);
    // Crash in the middle of persisting: entries and snapshot written, hard state not.
    void persist_partially_then_crash();

    // The application: every entry applied, from index 1 (restored prefix included).
    const std::vector<Entry>& applied() const { return app_; }
    Index applied_index() const { return app_.empty() ? 0 : app_.back().index; }
    std::vector<ReadState>& read_states() { return reads_; }
    // Snapshot of the application at index i (<= applied) written to storage, then
    // compacts storage up to i.
    Status compact(Index i);

    // Observers for invariant checks: each applied entry, and each installed snapshot.
    std::function<void(NodeId, const Entry&)> on_apply;
    std::function<void(NodeId, const SnapshotMeta&, const std::vector<Entry>&)> on_restore;

    static std::string encode_app(const std::vector<Entry>& ents);
    static std::vector<Entry> decode_app(const std::string& data);

  private:
    void apply(const Entry& e);

    Config cfg_;
    MemoryStorage storage_;
    std::unique_ptr<Node> node_;
    std::optional<Ready> pending_;
    Ready taken_;
    struct Write {
        std::vector<Entry> entries;
        EntryId last;
        std::optional<HardState> hard_state;  // commit only
    };
    std::deque<Write> writes_;
    std::string staging_;
    std::vector<Entry> app_;
    std::vector<ReadState> reads_;
};

}  // namespace raftd::raft::testing
