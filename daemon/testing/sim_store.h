// SimStore: a DurableStore for the pipeline simulation that keeps, across a simulated power
// loss, exactly what wal::DiskStorage (wal/disk_storage.cpp, docs/wal-format.md 5.3-5.4) would
// have made durable, and nothing more.
//
// Owns: nothing durable itself; the SimDisk it is opened on holds what survives. The store
// holds what the running process sees: the hard state last written (synced or not) and a
// snapshot being received.
// Never: keep a write a power loss would lose. What the model keeps and loses:
//   - a persist job's entries (truncating a conflicting suffix first) and, with
//     commit_with_entries, the job's commit index as a WAL commit record, become durable
//     together at the end of the job; a power loss during the job keeps a prefix of its
//     entries and no commit record (persist_torn);
//   - the hard state goes to "LevelDB" after the entries: synced when term or vote changed,
//     unsynced otherwise. Unsynced writes are lost at a power loss unless a later synced
//     write (of any metadata) happened; the kernel may have written a prefix of them
//     (SimDisk::power_loss);
//   - a snapshot install (metadata and hard state in one synced batch, then a log reset) is
//     all or nothing; chunks staged before it are lost (temporary files are removed at open);
//   - an application snapshot (app_snapshot_*) is synced, then the log is compacted below it.
// Recovery (opening a new SimStore on the disk) computes the hard state as wal does (commit
// at least the snapshot index, and at least the newest WAL commit record) and the
// configuration from the snapshot's plus every config entry up to that commit.
// Thread rules: single-threaded test code; the simulation plays the storage thread itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/durable.h"
#include "raft/config.h"
#include "raft/memory_storage.h"

namespace raftd::daemon::testing {

// What one simulated node's data directory holds, as far as a power loss cares.
struct SimDisk {
    raft::MemoryStorage log;                // WAL entries and the current snapshot: durable
    raft::HardState hs;                     // LevelDB "hard_state" as of the last synced write
    std::vector<raft::HardState> unsynced;  // hard_state writes since then, oldest first
    raft::Index wal_commit = 0;             // newest WAL commit record (commit_with_entries)
    uint64_t syncs = 0;

    // Power loss: unsynced LevelDB writes are lost, except that the kernel may already have
    // written a prefix of them (LevelDB's log file is append-only): none in half of the
    // cases, a random prefix otherwise.
    void power_loss(raft::Rng& rng);
    // The hard state a reader of LevelDB sees now (the newest write, synced or not).
    const raft::HardState& current_hs() const { return unsynced.empty() ? hs : unsynced.back(); }
};

struct SimStoreOptions {
    // Issue 13, bug 1's fix: a job with entries makes its hard state's commit index durable
    // in the same sync as the entries (a commit record in the WAL batch). Off models the
    // store before the fix, for the regression test only.
    bool commit_with_entries = true;
};

class SimStore final : public DurableStore {
  public:
    SimStore(SimDisk& disk, SimStoreOptions opt);

    const raft::Storage& storage() const override { return view_; }
    const raft::SnapshotSource* snapshots() const override { return &disk_.log; }
    bool empty() const override;
    // First-boot identity is not simulated: every simulated node bootstraps as a new member
    // (daemon/first_boot.cpp is covered by its own tests and tests/scripts).
    uint64_t incarnation() const override { return 1; }
    std::map<uint64_t, uint64_t> peer_incarnations() const override { return {}; }
    Status record_peer_incarnation(uint64_t, uint64_t) override { return Status::ok(); }
    uint64_t syncs() const override { return disk_.syncs; }
    Status persist(PersistJob& job) override;
    Status close() override;
    Status app_snapshot_begin(const raft::SnapshotMeta& meta) override;
    Status app_snapshot_write(uint64_t offset, std::string_view data) override;
    Status app_snapshot_finish() override;
    void app_snapshot_abort() override { upload_.reset(); }

    // A power loss in the middle of persist(job): the snapshot install (one synced batch,
    // then the reset open() finishes) happened or not as `with_snapshot` says, and the first
    // `keep` entries reached the disk (records are cut at the first torn one); no commit
    // record and no hard state. The caller then calls SimDisk::power_loss and drops the store.
    void persist_torn(const PersistJob& job, bool with_snapshot, size_t keep);

    // Observer: entries as they are appended, with the term of the entry before the first
    // (for the log-matching check).
    std::function<void(const std::vector<raft::Entry>&, raft::Term prev)> on_append;

  private:
    class View final : public raft::Storage {
      public:
        explicit View(const SimStore& s) : s_(s) {}
        raft::InitialState initial_state() const override;
        Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                                 uint64_t max_bytes) const override {
            return s_.disk_.log.entries(lo, hi, max_bytes);
        }
        Result<raft::Term> term(raft::Index i) const override { return s_.disk_.log.term(i); }
        raft::Index first_index() const override { return s_.disk_.log.first_index(); }
        raft::Index last_index() const override { return s_.disk_.log.last_index(); }
        raft::SnapshotMeta snapshot_meta() const override { return s_.disk_.log.snapshot_meta(); }

      private:
        const SimStore& s_;
    };

    Status append(const std::vector<raft::Entry>& entries);
    Status install(const raft::SnapshotMeta& meta);
    void write_hs(const raft::HardState& hs, bool sync);

    SimDisk& disk_;
    SimStoreOptions opt_;
    View view_{*this};
    bool closed_ = false;
    struct Upload {
        raft::SnapshotMeta meta;
        std::string data;
    };
    std::optional<Upload> incoming_;  // chunks from the leader
    std::optional<Upload> upload_;    // the application's snapshot
};

}  // namespace raftd::daemon::testing
