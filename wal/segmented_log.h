// SegmentedLog: the segmented write-ahead log of raft entries (format: docs/wal-format.md).
//
// Owns: the segment files of one directory, the in-memory offset index rebuilt on open, a
// bounded cache of the most recent entries, group commit (one write and one fdatasync per
// append batch), suffix truncation, prefix compaction and recovery.
// Never: acknowledge a batch before its fdatasync returned; retry a failed write or sync
// (after any write-path error the SegmentedLog is failed: every later write returns that error,
// reads of what was already durable keep working); modify files when open() finds
// corruption.
//
// Thread rules: one writer at a time (calls that do not overlap and are ordered, perhaps from
// different threads) calls append / truncate_suffix / compact / reset; any number of reader
// threads may call the const methods concurrently with it. Readers see
// only entries whose batch is durable (append published them after the fdatasync). The
// write and the fdatasync of append run outside the lock, so readers near the tail are
// never blocked by a sync; truncate_suffix, compact and reset hold the lock while they
// change files, so a reader waits for them rather than seeing a half-changed log.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"
#include "wal/env.h"
#include "wal/segment.h"

namespace raftd::wal {

struct SegmentedLogOptions {
    uint64_t segment_bytes = 64u << 20;  // roll over to a new segment beyond this size
    bool preallocate = true;             // fallocate each segment to segment_bytes
    uint64_t cache_bytes = 16u << 20;    // byte budget (Entry::byte_size) of the tail cache
    // compact(i) keeps at least this many entries below i so slightly lagging followers can
    // still be served from the log instead of a snapshot.
    uint64_t compact_keep_entries = 0;
};

// What open() found and repaired; the daemon logs it.
struct RecoveryReport {
    size_t segments = 0;
    Index first_index = 1;
    Index last_index = 0;
    bool torn_tail_cut = false;
    std::string torn_tail;  // "<file> offset N: <why>; K bytes cut" when torn_tail_cut
    size_t temp_files_removed = 0;
};

class SegmentedLog {
  public:
    // Opens (creating the directory if needed) and recovers the log in `dir`: verifies every
    // record, cuts a torn tail of the last segment, refuses corruption anywhere else.
    static Result<std::unique_ptr<SegmentedLog>> open(Env* env, const std::string& dir,
                                                      const SegmentedLogOptions& opts = {});
    ~SegmentedLog();
    SegmentedLog(const SegmentedLog&) = delete;
    SegmentedLog& operator=(const SegmentedLog&) = delete;

    // ---- reads (any thread) --------------------------------------------------------------
    // Same contracts as raft::Storage: kCompacted below first_index(), kNotFound above.
    Index first_index() const;
    Index last_index() const;
    Result<raft::Term> term(Index i) const;  // first_index() - 1 <= i <= last_index()
    // Entries [lo, hi), at least one when lo < hi, stopping before max_bytes is exceeded.
    Result<std::vector<raft::Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const;
    // The config entries among [lo, hi), read through the index the scan and appends keep:
    // the cost follows the number of config entries, not the log's size.
    Result<std::vector<raft::Entry>> config_entries(Index lo, Index hi) const;

    // ---- writes (one writer at a time) ---------------------------------------------------
    // Durably appends consecutive entries. When batch[0].index <= last_index() the entries
    // from batch[0].index on are truncated first (a follower replacing a conflicting tail).
    // A `commit` above 0 is written as a commit record after the entries, so it is durable
    // in the same fdatasync; it must not exceed the batch's last index. Returns only after
    // one fdatasync covered the whole batch.
    Status append(std::span<const raft::Entry> batch, Index commit = 0);
    // Durably drops entries >= from (first_index() <= from, from > durable_commit()). A
    // commit record of durable_commit() is written at the cut, so commit records that stood
    // after it are not lost with the entries.
    Status truncate_suffix(Index from);
    // Drops whole segments whose entries are all below upto - compact_keep_entries. The
    // newest segment is never dropped. upto must not exceed last_index().
    Status compact(Index upto);
    // Drops every entry; the log continues at snapshot_index + 1 and answers
    // term(snapshot_index) with snapshot_term (a follower installing a snapshot).
    Status reset(Index snapshot_index, raft::Term snapshot_term);

    // The highest commit index made durable by a commit record (0: none). Any thread.
    Index durable_commit() const { return durable_commit_.load(std::memory_order_acquire); }

    // The error that failed the log, ok while healthy. Any thread.
    Status failure() const;
    const RecoveryReport& recovery() const { return recovery_; }
    // Reads that had to go to a segment file rather than the cache (tests, metrics).
    uint64_t disk_reads() const { return disk_reads_.load(std::memory_order_relaxed); }
    // fdatasync calls of the write path since open (benchmarks report syncs per entry).
    uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
    size_t segment_count() const;
    const std::string& dir() const { return dir_; }

    struct Token {};  // lets open() use make_unique while the constructor stays private
    SegmentedLog(Token, Env* env, std::string dir, const SegmentedLogOptions& opts);

  private:
    Status recover();
    Status fail(Status s);
    Status check_batch(std::span<const raft::Entry> batch) const;
    Status truncate_locked(Index from);
    Status check_truncation(Index from) const;
    Status remove_segment_file(const std::string& path);
    Status seal_active();
    Result<std::unique_ptr<Segment>> create_segment(Index first, raft::Term prev_term);
    Status read_from_disk(Index lo, Index hi, uint64_t max_bytes, std::vector<raft::Entry>& out,
                          uint64_t& bytes) const;
    void cache_push(const raft::Entry& e);
    void cache_drop_from(Index i);
    void cache_drop_below(Index i);
    Index first_index_locked() const;
    Index last_index_locked() const;
    Result<raft::Term> term_locked(Index i) const;
    const Segment* find_segment(Index i) const;

    Env* env_;
    std::string dir_;
    SegmentedLogOptions opts_;
    RecoveryReport recovery_;

    mutable std::shared_mutex mu_;
    // Guarded by mu_ (readers shared, writer exclusive when changing them).
    std::vector<std::unique_ptr<Segment>> segments_;  // ascending first_index; back() active
    std::deque<raft::Entry> cache_;                   // the newest entries, contiguous
    uint64_t cache_used_ = 0;
    Status failed_;

    std::unique_ptr<char[]> encode_buf_;  // writer only: reused across appends
    size_t encode_cap_ = 0;
    mutable std::atomic<uint64_t> disk_reads_{0};
    std::atomic<uint64_t> syncs_{0};
    std::atomic<Index> durable_commit_{0};  // written by the writer thread only
};

}  // namespace raftd::wal
