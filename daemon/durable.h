// DurableStore: the narrow interface between the daemon's Ready pipeline and its storage.
//
// Owns: nothing; an interface. The pipeline hands it the persist half of each Ready (a
// PersistJob), on the storage thread or, when that thread is idle, on the loop thread; raft
// reads through storage()/snapshots() on the loop thread meanwhile.
// Never: report a job done before everything in it is durable (the persistence contract in
// docs/raft.md depends on it); retry a failed write (the daemon stops instead).
//
// Thread rules: one writer at a time, in job order, never two threads at once. persist() on
// the storage thread, or on the loop thread while the storage thread has nothing queued or
// running (ReadyPipeline::try_persist_inline) and after it was joined (the last commit index
// at stop); record_peer_incarnation() and app_snapshot_* on the storage thread; close() after
// it was joined. The read views from the loop thread, concurrently with a write on the
// storage thread. Implementations make reads see only durable data.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/ready.h"
#include "raft/snapshot_source.h"
#include "raft/status.h"
#include "raft/storage.h"

namespace raftd::daemon {

// The persist half of one Ready, moved out of it (payloads are shared, never copied).
struct PersistJob {
    std::vector<raft::SnapshotChunk> chunks;
    std::optional<raft::SnapshotMeta> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
};

class DurableStore {
  public:
    virtual ~DurableStore() = default;
    virtual const raft::Storage& storage() const = 0;
    virtual const raft::SnapshotSource* snapshots() const = 0;
    // Nothing was ever persisted (no hard state, entry or snapshot): a brand-new node.
    virtual bool empty() const = 0;
    // This data directory's incarnation (wal/disk_storage.h): a new directory has a new one.
    virtual uint64_t incarnation() const = 0;
    // The incarnation last recorded for each peer node id. Any thread.
    virtual std::map<uint64_t, uint64_t> peer_incarnations() const = 0;
    // Durably records a peer's incarnation. Storage thread.
    virtual Status record_peer_incarnation(uint64_t peer, uint64_t incarnation) = 0;
    // fsync-family calls made for durability since open. Any thread.
    virtual uint64_t syncs() const = 0;
    // Makes everything in `job` durable, in the order of the persistence contract: chunks,
    // snapshot install, entries (truncating a conflicting suffix), hard state.
    virtual Status persist(PersistJob& job) = 0;
    // Flushes and closes; later calls fail.
    virtual Status close() = 0;

    // A snapshot the application uploads (the client `snapshot` op), on the storage thread:
    // begin, write chunks in order, then finish (durable, current, log compacted below it).
    // abort drops an unfinished upload. Only one upload at a time.
    virtual Status app_snapshot_begin(const raft::SnapshotMeta& meta) = 0;
    virtual Status app_snapshot_write(uint64_t offset, std::string_view data) = 0;
    virtual Status app_snapshot_finish() = 0;
    virtual void app_snapshot_abort() = 0;
};

// Opens the node's store under `dir` (the data directory, already locked by DataDir).
struct StoreOptions {
    uint64_t segment_bytes = 64u << 20;
    uint64_t cache_bytes = 64u << 20;
    uint64_t keep_entries = 10000;
    std::string cluster;
    uint64_t node_id = 0;
};
Result<std::unique_ptr<DurableStore>> open_store(const std::string& dir, const StoreOptions& opts);

}  // namespace raftd::daemon
