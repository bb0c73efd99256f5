// DiskStorage: raft's Storage and SnapshotSource over the files of one data directory:
// the SegmentedLog in <data_dir>/wal, LevelDB metadata in <data_dir>/meta and snapshot
// files in <data_dir>/snap (layout, keys and file formats: docs/wal-format.md). The daemon
// reaches it through its own interface, daemon::DurableStore (daemon/wal_store.cpp).
//
// Owns: the SegmentedLog, the LevelDB handle, the current snapshot file, the data dir's recorded
// identity (format version, cluster id, node id, incarnation) and the incarnations recorded
// for peers.
// Never: acknowledge (return ok from) a write before it is durable; retry a failed write or
// sync (after any write-path error the storage is failed: every later write returns that
// error, reads of what was durable keep working); start on a directory of another cluster,
// node or format version; make a snapshot current before its file and metadata are durable.
//
// Thread rules: ONE writer at a time calls persist, begin_snapshot (and the
// SnapshotFileWriter it returns), install_snapshot, save_snapshot_and_compact and
// record_peer_incarnation: the calls must not overlap and each must happen-after the one
// before (the daemon makes them on its storage thread, or on its loop thread while the
// storage thread is idle; daemon/durable.h). The raft::Storage / raft::SnapshotSource
// methods and failure() may be called from any other thread concurrently with it: they see only
// what a write reported durable, and install/compact change the log and the snapshot metadata under
// one lock, so a reader never sees the snapshot of one state with the log of another.
//
// Typical use by the daemon, per Ready (docs/raft.md, "Persistence contract"):
//   chunk at offset 0        -> w = begin_snapshot(chunk.meta)   (drops any unfinished writer)
//   every chunk              -> w->write(chunk.offset, chunk.data)
//   rd.snapshot (follower)   -> w->commit(); install_snapshot(*rd.snapshot)
//   rd.entries/rd.hard_state -> persist(rd.entries, rd.hard_state)
// and for a snapshot the application made (any role): begin_snapshot(node.snapshot_meta(i)),
// write, commit, save_snapshot_and_compact(meta).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>

#include "raft/snapshot_source.h"
#include "raft/status.h"
#include "raft/storage.h"
#include "raft/types.h"
#include "wal/env.h"
#include "wal/segmented_log.h"

namespace leveldb {
class DB;
class WriteBatch;
}  // namespace leveldb

namespace raftd::wal {

// After this many bytes of entries went into the log, persist writes the commit to meta/ too
// (not synced), so that a cut end of the log below it is refused on load
// (docs/wal-format.md, 5.3). Small enough to catch a lost tail of a few dozen batches, large
// enough to cost one cheap LevelDB write per many batches.
inline constexpr uint64_t kCommitEvidenceBytes = 16 << 10;

// The data dir format this build reads and writes (meta key "format_version").
inline constexpr uint32_t kDataDirFormatVersion = 1;

struct DiskStorageOptions {
    std::string cluster_id;  // must match the one recorded when the directory was created
    uint64_t node_id = 0;    // likewise; >= 1
    SegmentedLogOptions log;
};

class DiskStorage;

// Writes one snapshot file: created under a temporary name, filled with sequential writes,
// made durable and renamed by commit(). Abandoning it (destroying it without commit, or a
// failed write) removes the temporary file. Must not outlive its DiskStorage; writer
// thread only. (ipc::SnapshotWriter is the other end: a client's upload stream, which the
// daemon turns into one of these.)
class SnapshotFileWriter {
  public:
    ~SnapshotFileWriter();
    SnapshotFileWriter(const SnapshotFileWriter&) = delete;
    SnapshotFileWriter& operator=(const SnapshotFileWriter&) = delete;

    // Appends data at `offset`, which must equal bytes_written() (chunks arrive in order).
    Status write(uint64_t offset, std::string_view data);
    // Writes the trailer, fsyncs, renames to the final name and fsyncs the directory. The
    // snapshot is then durable but not yet current: install_snapshot or
    // save_snapshot_and_compact makes it current.
    Status commit();
    uint64_t bytes_written() const { return written_; }
    const raft::SnapshotMeta& meta() const { return meta_; }

    struct Token {};
    SnapshotFileWriter(Token, DiskStorage* owner, raft::SnapshotMeta meta, std::string tmp_path,
                       std::string final_path, std::unique_ptr<File> file);

  private:
    void abandon();

    DiskStorage* owner_;
    raft::SnapshotMeta meta_;
    std::string tmp_path_;
    std::string final_path_;
    std::unique_ptr<File> file_;  // null once committed or abandoned
    uint64_t written_ = 0;
    uint32_t crc_ = 0;  // unmasked CRC32C of the data so far
    Status failed_;
};

class DiskStorage final : public raft::Storage, public raft::SnapshotSource {
  public:
    // Opens or creates the storage in data_dir (which must exist or be creatable). A fresh
    // directory records the format version, cluster id and node id; an existing one must
    // match all three. Recovers the log, verifies the current snapshot file, removes
    // leftovers (temporary files, snapshot files that are not current) and finishes an
    // interrupted snapshot install. Errors are one line naming the directory.
    static Result<std::unique_ptr<DiskStorage>> open(Env* env, const std::string& data_dir,
                                                     const DiskStorageOptions& opts);
    ~DiskStorage() override;
    DiskStorage(const DiskStorage&) = delete;
    DiskStorage& operator=(const DiskStorage&) = delete;

    // ---- raft::Storage / raft::SnapshotSource (any thread) -------------------------------
    // hard: the latest persisted hard state, its commit the highest of meta/'s, the log's
    // commit records and the snapshot index.
    // conf: the snapshot's configuration with every config entry of the log after it, up to
    // the commit index, applied in order (changes apply_conf_change refuses are skipped, as
    // raft does). Reads only the config entries (the log indexes them).
    raft::InitialState initial_state() const override;
    Result<std::vector<raft::Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override;
    Result<raft::Term> term(Index i) const override;
    Index first_index() const override;
    Index last_index() const override;
    raft::SnapshotMeta snapshot_meta() const override;
    Result<std::vector<raft::Entry>> config_entries(Index lo, Index hi) const override;
    // Bytes of the snapshot data (not the file's header or trailer), which was verified
    // against its CRC when it became current or when the storage was opened.
    Result<raft::SnapshotBytes> read_snapshot(Index index, uint64_t offset,
                                              uint64_t max_bytes) const override;

    // ---- writes (one writer at a time) ---------------------------------------------------
    // Durably appends `entries` (one write and one fdatasync; a conflicting suffix is
    // truncated first) followed by a commit record of `hs`'s commit (or the stored one), so
    // whenever entries become durable the commit known then is durable with them. Then
    // records `hs` when given and different: a synced LevelDB write when term or vote
    // changed; a change of commit alone is in the log already when entries were given, and
    // written unsynced otherwise (docs/wal-format.md 5.3 explains why that is safe).
    // Returns only when all of it is durable in that sense.
    Status persist(std::span<const raft::Entry> entries, const std::optional<raft::HardState>& hs);

    // Starts a snapshot file for `meta`. kInvalidArgument when meta.index is not above the
    // current snapshot's index.
    Result<std::unique_ptr<SnapshotFileWriter>> begin_snapshot(const raft::SnapshotMeta& meta);
    // A follower installing the committed snapshot for `meta` from its leader: records the
    // snapshot metadata (and commit >= its index) in one synced batch, then resets the log
    // to continue at meta.index + 1, then removes the previous snapshot file.
    Status install_snapshot(const raft::SnapshotMeta& meta);
    // A snapshot the application made of its state at meta.index (<= last_index(), with the
    // log's term there): records the metadata, removes the previous snapshot file, then
    // compacts the log below meta.index (SegmentedLogOptions::compact_keep_entries are kept).
    Status save_snapshot_and_compact(const raft::SnapshotMeta& meta);

    // A random non-zero id drawn when this directory's metadata was created (or, for a
    // directory an older build made, when this build first opened it). A node whose data
    // directory was lost and made again comes back with another one. Any thread.
    uint64_t incarnation() const { return incarnation_; }
    // The incarnation recorded for each peer node id. Any thread.
    std::map<uint64_t, uint64_t> peer_incarnations() const;
    // Durably records (one synced metadata write) `incarnation` as node `peer`'s. A failed
    // write fails the storage like any other.
    Status record_peer_incarnation(uint64_t peer, uint64_t incarnation);

    // The error that failed the storage, ok while healthy. Any thread.
    Status failure() const;
    const RecoveryReport& log_recovery() const { return log_->recovery(); }
    // What open() cleaned up or repaired, for the daemon's start-up log line.
    const std::string& open_notes() const { return open_notes_; }
    const SegmentedLog& log() const { return *log_; }
    // fdatasync/fsync calls made for durability since open: the log's and synced metadata
    // writes. Any thread.
    uint64_t syncs() const { return log_->syncs() + meta_syncs_.load(std::memory_order_relaxed); }
    const std::string& data_dir() const { return dir_; }

    struct Token {};
    DiskStorage(Token, Env* env, std::string dir, DiskStorageOptions opts);

  private:
    friend class SnapshotFileWriter;

    // What the meta key "snapshot" holds besides the SnapshotMeta.
    struct SnapFile {
        raft::SnapshotMeta meta;
        uint64_t data_size = 0;
        uint32_t data_crc = 0;  // unmasked
        std::string path;
        std::shared_ptr<File> file;  // open for reading; shared with in-flight reads
    };

    Status open_impl();
    Status check_identity();
    Status load_meta();
    Status load_peer_incarnations();
    Status verify_snapshot_file(SnapFile& sf) const;
    Status reconcile_log();
    Status verify_meta();
    Status clean_snap_dir();
    Status fail(Status s);
    Status write_meta(leveldb::WriteBatch& b, bool sync);
    Status remove_snapshot_file(const std::string& path);
    Status take_pending(const raft::SnapshotMeta& meta, SnapFile& out);
    void committed(SnapFile sf);  // SnapshotFileWriter::commit reports here
    std::string snap_path(const raft::SnapshotMeta& m) const;

    Env* env_;
    std::string dir_, wal_dir_, meta_dir_, snap_dir_;
    DiskStorageOptions opts_;
    std::unique_ptr<leveldb::DB> db_;
    std::unique_ptr<SegmentedLog> log_;
    std::atomic<uint64_t> meta_syncs_{0};
    uint64_t incarnation_ = 0;  // set by open, then constant
    std::string open_notes_;
    uint64_t writer_seq_ = 0;  // writer thread only: unique temporary snapshot names
    // Writer thread only: the commit last written to meta/, and the entry bytes appended
    // since (persist writes the commit to meta/ again after kCommitEvidenceBytes of them).
    raft::Index meta_commit_ = 0;
    uint64_t unrecorded_bytes_ = 0;

    // Guards the state below. Readers take it shared; install/compact hold it exclusively
    // across the log change and the metadata swap.
    mutable std::shared_mutex mu_;
    raft::HardState hs_;               // as persisted
    SnapFile snap_;                    // current snapshot; meta.index 0 = none
    std::optional<SnapFile> pending_;  // committed by a writer, not yet current
    std::map<uint64_t, uint64_t> peer_incarnations_;
    Status failed_;
};

}  // namespace raftd::wal
