// MemoryStorage: the Storage and SnapshotSource of tests and the simulator, held in memory.
//
// Owns: a hard state, a snapshot (metadata and bytes) and the entries after it. Its write
// methods are what a caller does with a Ready; what is written here is "durable" for a
// simulated crash.
// Never: checks raft's rules beyond keeping itself consistent (writes that would leave a gap
// or go below the snapshot are refused with a Status).
// Thread rules: not thread-safe; one thread.
#pragma once

#include <string>
#include <vector>

#include "raft/snapshot_source.h"
#include "raft/storage.h"

namespace raftd::raft {

class MemoryStorage : public Storage, public SnapshotSource {
  public:
    MemoryStorage();

    InitialState initial_state() const override;
    Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override;
    Result<Term> term(Index i) const override;
    Index first_index() const override;
    Index last_index() const override;
    SnapshotMeta snapshot_meta() const override;
    Result<SnapshotBytes> read_snapshot(Index index, uint64_t offset,
                                        uint64_t max_bytes) const override;

    void set_hard_state(const HardState& hs) { hard_ = hs; }
    const HardState& hard_state() const { return hard_; }
    // Appends, first truncating every entry at or after ents[0].index. Entries at or below
    // the snapshot are skipped.
    Status append(const std::vector<Entry>& ents);
    // Replaces the whole log with a snapshot (a follower installing one from its leader).
    Status apply_snapshot(const SnapshotMeta& meta, std::string data);
    // Records a snapshot of the caller's state at meta.index (<= last index) without
    // dropping entries; compact() drops them.
    Status create_snapshot(const SnapshotMeta& meta, std::string data);
    // Drops entries up to and including i (i <= the snapshot index).
    Status compact(Index i);
    const std::string& snapshot_data() const { return snap_data_; }

  private:
    HardState hard_;
    SnapshotMeta snap_;
    std::string snap_data_;
    // ents_[0] is a placeholder for the snapshot's (index, term); real entries follow.
    std::vector<Entry> ents_;
};

}  // namespace raftd::raft
