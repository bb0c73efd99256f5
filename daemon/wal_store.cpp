// DurableStore over wal::DiskStorage: the Ready's persist half mapped onto the storage's
// snapshot writer, install, and persist calls in the order of the persistence contract.
//
// Owns: the DiskStorage and the snapshot writers in progress (one streamed from the
// leader, one uploaded by the application).
// Never: install a snapshot whose chunks were not all written, or report success before the
// storage did.
// Thread rules: see durable.h.
#include <spdlog/spdlog.h>

#include "daemon/durable.h"
#include "wal/disk_storage.h"

namespace raftd::daemon {
namespace {

class WalStore final : public DurableStore {
  public:
    explicit WalStore(std::unique_ptr<wal::DiskStorage> s) : s_(std::move(s)) {}

    const raft::Storage& storage() const override { return *s_; }
    const raft::SnapshotSource* snapshots() const override { return s_.get(); }
    bool empty() const override {
        return s_->last_index() == 0 && s_->snapshot_meta().index == 0 &&
               s_->initial_state().hard.empty();
    }

    uint64_t incarnation() const override { return s_->incarnation(); }
    std::map<uint64_t, uint64_t> peer_incarnations() const override {
        return s_->peer_incarnations();
    }
    Status record_peer_incarnation(uint64_t peer, uint64_t incarnation) override {
        return s_->record_peer_incarnation(peer, incarnation);
    }
    uint64_t syncs() const override { return s_->syncs(); }

    Status persist(PersistJob& job) override {
        for (const raft::SnapshotChunk& c : job.chunks) {
            if (c.offset == 0) {
                // A new transfer replaces any unfinished one.
                incoming_.reset();
                auto w = s_->begin_snapshot(c.meta);
                if (!w) return w.status();
                incoming_ = std::move(w).value();
            }
            if (!incoming_ || incoming_->meta().index != c.meta.index)
                return Status::internal("snapshot chunk at offset " + std::to_string(c.offset) +
                                        " without its first chunk");
            if (Status st = incoming_->write(c.offset, c.data); !st) return st;
        }
        if (job.snapshot) {
            if (!incoming_ || incoming_->meta().index != job.snapshot->index)
                return Status::internal("installing a snapshot that was not received");
            if (Status st = incoming_->commit(); !st) return st;
            incoming_.reset();
            if (Status st = s_->install_snapshot(*job.snapshot); !st) return st;
            spdlog::info("installed snapshot at index {} term {} from the leader",
                         job.snapshot->index, job.snapshot->term);
        }
        if (!job.entries.empty() || job.hard_state) return s_->persist(job.entries, job.hard_state);
        return Status::ok();
    }

    Status close() override {
        incoming_.reset();
        upload_.reset();
        return s_->failure();
    }

    Status app_snapshot_begin(const raft::SnapshotMeta& meta) override {
        upload_.reset();
        auto w = s_->begin_snapshot(meta);
        if (!w) return w.status();
        upload_ = std::move(w).value();
        return Status::ok();
    }
    Status app_snapshot_write(uint64_t offset, std::string_view data) override {
        if (!upload_) return Status::invalid_argument("no snapshot upload in progress");
        return upload_->write(offset, data);
    }
    Status app_snapshot_finish() override {
        if (!upload_) return Status::invalid_argument("no snapshot upload in progress");
        raft::SnapshotMeta meta = upload_->meta();
        Status st = upload_->commit();
        upload_.reset();
        if (!st) return st;
        return s_->save_snapshot_and_compact(meta);
    }
    void app_snapshot_abort() override { upload_.reset(); }

  private:
    std::unique_ptr<wal::DiskStorage> s_;
    std::unique_ptr<wal::SnapshotFileWriter> incoming_;
    std::unique_ptr<wal::SnapshotFileWriter> upload_;
};

}  // namespace

Result<std::unique_ptr<DurableStore>> open_store(const std::string& dir, const StoreOptions& opts) {
    wal::DiskStorageOptions so;
    so.cluster_id = opts.cluster;
    so.node_id = opts.node_id;
    so.log.segment_bytes = opts.segment_bytes;
    so.log.cache_bytes = opts.cache_bytes;
    so.log.compact_keep_entries = opts.keep_entries;
    auto s = wal::DiskStorage::open(wal::Env::posix(), dir, so);
    if (!s) return s.status();
    if (!(*s)->open_notes().empty()) spdlog::warn("storage: {}", (*s)->open_notes());
    const auto& rec = (*s)->log_recovery();
    if (rec.torn_tail_cut) spdlog::warn("write-ahead log: torn tail cut: {}", rec.torn_tail);
    return std::unique_ptr<DurableStore>(std::make_unique<WalStore>(std::move(s).value()));
}

}  // namespace raftd::daemon
