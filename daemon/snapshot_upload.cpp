// An application snapshot upload: see snapshot_upload.h.
#include "daemon/snapshot_upload.h"

#include <spdlog/spdlog.h>

namespace raftd::daemon {

namespace {

using ipc::Error;
using ipc::ErrorCode;

// One application snapshot upload. Every step runs on the storage thread in order (begin,
// the chunks, finish), so the loop never waits for snapshot bytes to reach the disk.
class AppUpload final : public ipc::SnapshotWriter {
  public:
    AppUpload(NodeHost& host, raft::SnapshotMeta meta, std::shared_ptr<bool> busy,
              std::string section)
        : host_(host), meta_(std::move(meta)), busy_(std::move(busy)), offset_(section.size()) {
        *busy_ = true;
        DurableStore* store = &host_.store_for_storage_thread();
        raft::SnapshotMeta m = meta_;
        // The daemon's section goes first; the application's chunks follow it.
        host_.run_on_storage_thread(
            [store, m, section = std::move(section)] {
                Status st = store->app_snapshot_begin(m);
                if (st && !section.empty()) st = store->app_snapshot_write(0, section);
                return st;
            },
            [](Status st) {
                if (!st) spdlog::warn("snapshot upload: {}", st.message());
            });
    }
    ~AppUpload() override {
        if (!ended_) abort();
    }

    void write(raft::Payload chunk, ipc::Done<ipc::Unit> done) override {
        if (ended_) {
            done(Error{ErrorCode::kBadRequest, "the upload has ended", std::nullopt});
            return;
        }
        DurableStore* store = &host_.store_for_storage_thread();
        const uint64_t off = offset_;
        offset_ += chunk.size();
        auto d = std::make_shared<ipc::Done<ipc::Unit>>(std::move(done));
        host_.run_on_storage_thread(
            [store, off, chunk] { return store->app_snapshot_write(off, chunk.view()); },
            [d](Status st) {
                if (st)
                    (*d)(ipc::Unit{});
                else
                    (*d)(Error{ErrorCode::kInternal, "saving the snapshot: " + st.message(),
                               std::nullopt});
            });
    }

    void finish(raft::Payload last, ipc::Done<raft::Index> done) override {
        if (ended_) {
            done(Error{ErrorCode::kBadRequest, "the upload has ended", std::nullopt});
            return;
        }
        ended_ = true;
        DurableStore* store = &host_.store_for_storage_thread();
        const uint64_t off = offset_;
        const raft::Index index = meta_.index;
        auto d = std::make_shared<ipc::Done<raft::Index>>(std::move(done));
        auto busy = busy_;
        NodeHost* host = &host_;
        host_.run_on_storage_thread(
            [store, off, last] {
                if (!last.empty()) {
                    if (Status st = store->app_snapshot_write(off, last.view()); !st) return st;
                }
                return store->app_snapshot_finish();
            },
            [d, busy, index, host](Status st) {
                *busy = false;
                if (!st) {
                    (*d)(Error{ErrorCode::kInternal, "saving the snapshot: " + st.message(),
                               std::nullopt});
                    return;
                }
                spdlog::info("snapshot at index {} saved; log compacted below it", index);
                (*d)(index);
                host->kick();
            });
    }

    void abort() override {
        if (ended_) return;
        ended_ = true;
        *busy_ = false;
        DurableStore* store = &host_.store_for_storage_thread();
        host_.run_on_storage_thread(
            [store] {
                store->app_snapshot_abort();
                return Status::ok();
            },
            nullptr);
    }

  private:
    NodeHost& host_;
    raft::SnapshotMeta meta_;
    std::shared_ptr<bool> busy_;
    uint64_t offset_ = 0;
    bool ended_ = false;
};

// An upload the latest snapshot already covers: nothing is written, so nothing waits for
// the storage thread or holds the "upload open" flag.
class CoveredUpload final : public ipc::SnapshotWriter {
  public:
    explicit CoveredUpload(NodeHost& host) : host_(host) {}
    void write(raft::Payload, ipc::Done<ipc::Unit> done) override { done(ipc::Unit{}); }
    void finish(raft::Payload, ipc::Done<raft::Index> done) override {
        // Read now, not at begin: a newer snapshot may have been installed meanwhile.
        done(host_.store().storage().snapshot_meta().index);
    }
    void abort() override {}

  private:
    NodeHost& host_;
};

}  // namespace

std::unique_ptr<ipc::SnapshotWriter> start_covered_upload(NodeHost& host) {
    return std::make_unique<CoveredUpload>(host);
}

std::unique_ptr<ipc::SnapshotWriter> start_snapshot_upload(NodeHost& host, raft::SnapshotMeta meta,
                                                           std::shared_ptr<bool> busy,
                                                           std::string section) {
    return std::make_unique<AppUpload>(host, std::move(meta), std::move(busy), std::move(section));
}

}  // namespace raftd::daemon
