// The storage model of the pipeline simulation: see sim_store.h.
#include "daemon/testing/sim_store.h"

#include <algorithm>

#include "raft/confchange.h"
#include "raft/confchange_codec.h"

namespace raftd::daemon::testing {

void SimDisk::power_loss(raft::Rng& rng) {
    if (!unsynced.empty() && rng.chance(0.5)) {
        size_t keep = rng.uniform(0, unsynced.size() + 1);
        if (keep > 0) hs = unsynced[keep - 1];
    }
    unsynced.clear();
}

SimStore::SimStore(SimDisk& disk, SimStoreOptions opt) : disk_(disk), opt_(opt) {
    // Opening the directory: what survived is all there is; a write that was in the kernel
    // only is gone by now (the caller ran SimDisk::power_loss), and a torn job's commit
    // record never reached the disk.
}

bool SimStore::empty() const {
    return disk_.log.last_index() == 0 && disk_.log.snapshot_meta().index == 0 &&
           disk_.current_hs().empty();
}

// As wal::DiskStorage::initial_state: the stored hard state with its commit raised to the
// snapshot (and, with the fix, to the newest commit record), and the snapshot's configuration
// with every config entry up to that commit applied (refused changes skipped, as raft does).
raft::InitialState SimStore::View::initial_state() const {
    const SimDisk& d = s_.disk_;
    raft::InitialState st;
    st.hard = d.current_hs();
    const raft::SnapshotMeta snap = d.log.snapshot_meta();
    st.hard.commit = std::max({st.hard.commit, d.wal_commit, snap.index});
    st.conf = snap.conf;
    const raft::Index upto = std::min(st.hard.commit, d.log.last_index());
    if (upto > snap.index) {
        auto ents = d.log.entries(snap.index + 1, upto + 1, UINT64_MAX);
        if (ents) {
            for (const raft::Entry& e : *ents) {
                if (e.type != raft::EntryType::kConfig) continue;
                auto cc = raft::decode_conf_change(e.data.view());
                if (!cc) continue;
                if (auto nc = raft::apply_conf_change(st.conf, *cc)) st.conf = std::move(*nc);
            }
        }
    }
    return st;
}

void SimStore::write_hs(const raft::HardState& hs, bool sync) {
    if (sync) {
        // A synced LevelDB write makes every earlier one durable too (one log file).
        disk_.hs = hs;
        disk_.unsynced.clear();
        ++disk_.syncs;
    } else {
        disk_.unsynced.push_back(hs);
    }
}

Status SimStore::append(const std::vector<raft::Entry>& entries) {
    if (entries.empty()) return Status::ok();
    auto before = disk_.log.term(entries.front().index - 1);
    const raft::Term prev = before ? *before : 0;
    if (entries.front().index > disk_.log.last_index() + 1) {
        return Status::invalid_argument("append at " + std::to_string(entries.front().index) +
                                        " leaves a gap after " +
                                        std::to_string(disk_.log.last_index()));
    }
    if (Status st = disk_.log.append(entries); !st) return st;
    ++disk_.syncs;
    if (on_append) on_append(entries, prev);
    return Status::ok();
}

Status SimStore::install(const raft::SnapshotMeta& meta) {
    if (!incoming_ || incoming_->meta.index != meta.index)
        return Status::internal("installing a snapshot that was not received");
    if (meta.index <= disk_.log.snapshot_meta().index) {
        return Status::invalid_argument("snapshot at " + std::to_string(meta.index) +
                                        " is not newer than the current one");
    }
    raft::HardState hs = disk_.current_hs();
    hs.commit = std::max(hs.commit, meta.index);
    write_hs(hs, true);  // with the snapshot record, one synced batch
    if (Status st = disk_.log.apply_snapshot(meta, std::move(incoming_->data)); !st) return st;
    disk_.wal_commit = 0;  // the log reset removed every segment
    incoming_.reset();
    return Status::ok();
}

Status SimStore::persist(PersistJob& job) {
    if (closed_) return Status::internal("store closed");
    for (const raft::SnapshotChunk& c : job.chunks) {
        if (c.offset == 0) incoming_ = Upload{c.meta, {}};
        if (!incoming_ || incoming_->meta.index != c.meta.index ||
            incoming_->data.size() != c.offset)
            return Status::internal("snapshot chunk at offset " + std::to_string(c.offset) +
                                    " out of order");
        incoming_->data += c.data;
    }
    if (job.snapshot) {
        if (Status st = install(*job.snapshot); !st) return st;
    }
    if (Status st = append(job.entries); !st) return st;
    if (!job.entries.empty() && job.hard_state && opt_.commit_with_entries) {
        // The commit record is in the same WAL batch, made durable by the entries' sync.
        disk_.wal_commit = std::max(disk_.wal_commit, job.hard_state->commit);
    }
    const raft::HardState cur = disk_.current_hs();
    if (!job.hard_state || *job.hard_state == cur) return Status::ok();
    // wal/disk_storage.cpp: only a change of term or vote is synced.
    write_hs(*job.hard_state, job.hard_state->term != cur.term || job.hard_state->vote != cur.vote);
    return Status::ok();
}

void SimStore::persist_torn(const PersistJob& job, bool with_snapshot, size_t keep) {
    if (with_snapshot && job.snapshot) {
        // The chunks were all written and committed before the install's batch.
        PersistJob staged;
        staged.chunks = job.chunks;
        staged.snapshot = job.snapshot;
        if (!persist(staged)) return;
    } else if (job.snapshot) {
        return;  // the entries come after the install
    }
    keep = std::min(keep, job.entries.size());
    if (keep > 0) {
        std::vector<raft::Entry> prefix(job.entries.begin(),
                                        job.entries.begin() + static_cast<std::ptrdiff_t>(keep));
        (void)append(prefix);
    }
}

Status SimStore::close() {
    closed_ = true;
    incoming_.reset();
    upload_.reset();
    return Status::ok();
}

Status SimStore::app_snapshot_begin(const raft::SnapshotMeta& meta) {
    if (meta.index <= disk_.log.snapshot_meta().index)
        return Status::invalid_argument("snapshot not newer than the current one");
    upload_ = Upload{meta, {}};
    return Status::ok();
}

Status SimStore::app_snapshot_write(uint64_t offset, std::string_view data) {
    if (!upload_) return Status::invalid_argument("no snapshot upload in progress");
    if (offset != upload_->data.size()) return Status::invalid_argument("offset out of order");
    upload_->data += data;
    return Status::ok();
}

Status SimStore::app_snapshot_finish() {
    if (!upload_) return Status::invalid_argument("no snapshot upload in progress");
    Upload u = std::move(*upload_);
    upload_.reset();
    const raft::Index i = u.meta.index;
    if (i <= disk_.log.snapshot_meta().index) return Status::invalid_argument("overtaken");
    if (i < disk_.log.first_index() - 1 || i > disk_.log.last_index())
        return Status::invalid_argument("snapshot outside the log");
    auto t = disk_.log.term(i);
    if (!t || *t != u.meta.term) return Status::invalid_argument("snapshot term differs");
    if (Status st = disk_.log.create_snapshot(u.meta, std::move(u.data)); !st) return st;
    ++disk_.syncs;
    // The snapshot is durable and current before anything it covers goes.
    return disk_.log.compact(i);
}

}  // namespace raftd::daemon::testing
