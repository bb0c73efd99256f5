// The writer half of wal::SegmentedLog: group commit, segment roll-over, truncation, compaction.
// The ordering of file operations here is what makes the log crash-safe; each step says why.
#include <algorithm>
#include <mutex>

#include "wal/segmented_log.h"

namespace raftd::wal {

using raft::Entry;

namespace {
constexpr uint64_t kMaxOffset = 1ull << 31;  // offsets are kept as uint32_t
constexpr uint64_t kMaxBatchBytes = 1ull << 30;
}  // namespace

Status SegmentedLog::check_batch(std::span<const Entry> batch) const {
    std::shared_lock lk(mu_);
    const Index first = first_index_locked(), last = last_index_locked();
    const Index start = batch[0].index;
    if (start < first || start > last + 1)
        return Status::invalid_argument("append at index " + std::to_string(start) +
                                        ": the log holds [" + std::to_string(first) + ", " +
                                        std::to_string(last) + "]");
    auto prev = term_locked(start - 1);
    raft::Term t = prev ? prev.value() : 0;
    uint64_t total = 0;
    for (size_t k = 0; k < batch.size(); k++) {
        const Entry& e = batch[k];
        if (e.index != start + k)
            return Status::invalid_argument("append: entry " + std::to_string(k) + " has index " +
                                            std::to_string(e.index) + ", expected " +
                                            std::to_string(start + k));
        if (e.term < t || e.term == 0)
            return Status::invalid_argument("append: entry " + std::to_string(e.index) +
                                            " has term " + std::to_string(e.term) +
                                            " below the previous term " + std::to_string(t));
        if (!valid_entry_type(static_cast<uint8_t>(e.type)))
            return Status::invalid_argument("append: entry " + std::to_string(e.index) +
                                            " has an unknown type");
        if (e.data.size() > kMaxEntryData)
            return Status::invalid_argument("append: entry " + std::to_string(e.index) +
                                            " data exceeds 64 MiB");
        t = e.term;
        total += entry_record_size(e);
    }
    if (total > kMaxBatchBytes) return Status::invalid_argument("append: batch exceeds 1 GiB");
    return Status::ok();
}

Status SegmentedLog::check_truncation(Index from) const {
    // Raft never replaces a committed entry; a request to is a bug upstream, refused before
    // anything changes.
    if (from <= durable_commit())
        return Status::invalid_argument("truncating from index " + std::to_string(from) +
                                        " would drop committed entries (commit " +
                                        std::to_string(durable_commit()) + ")");
    return Status::ok();
}

Status SegmentedLog::append(std::span<const Entry> batch, Index commit) {
    if (!failed_.is_ok()) return failed_;  // only this thread writes failed_
    if (batch.empty()) return Status::ok();
    if (Status s = check_batch(batch); !s) return s;
    if (commit > batch.back().index)
        return Status::invalid_argument("append: commit " + std::to_string(commit) +
                                        " is beyond the batch's last index " +
                                        std::to_string(batch.back().index));
    // Commit only moves forward; an older value would say nothing new.
    const bool commit_record = commit > durable_commit();

    if (batch[0].index <= last_index()) {
        if (Status s = check_truncation(batch[0].index); !s) return s;
        std::unique_lock lk(mu_);
        if (Status s = truncate_locked(batch[0].index); !s) {
            lk.unlock();
            return fail(std::move(s));
        }
    }

    size_t total = commit_record ? kCommitRecordSize : 0;
    for (const Entry& e : batch)
        total += entry_record_size(e);

    Segment* act = segments_.empty() ? nullptr : segments_.back().get();
    const bool full = act != nullptr && !act->empty() &&
                      (act->end + total > opts_.segment_bytes || act->end + total > kMaxOffset);
    if (act == nullptr || full) {
        const raft::Term prev_term = act ? act->last_term() : 0;
        if (full)
            if (Status s = seal_active(); !s) return fail(std::move(s));
        auto seg = create_segment(batch[0].index, prev_term);
        if (!seg) return fail(seg.status());
        std::unique_lock lk(mu_);
        segments_.push_back(std::move(seg.value()));
        act = segments_.back().get();
    }

    // Encode the whole batch into one reused buffer: one copy of each entry's data, then
    // one pwrite and one fdatasync for the batch (group commit).
    if (encode_cap_ < total) {
        encode_cap_ = std::max(total, encode_cap_ * 2);
        encode_buf_ = std::make_unique_for_overwrite<char[]>(encode_cap_);
    }
    char* p = encode_buf_.get();
    for (const Entry& e : batch) {
        encode_entry_record(e, p);
        p += entry_record_size(e);
    }
    if (commit_record) encode_commit_record(commit, p);
    // Writing past `end` touches bytes no reader looks at, so no lock is held here.
    if (Status s = write_all(*act->file, act->end, encode_buf_.get(), total); !s)
        return fail(std::move(s));
    if (Status s = (syncs_.fetch_add(1, std::memory_order_relaxed), act->file->datasync()); !s)
        return fail(std::move(s));

    // Durable: publish to readers.
    std::unique_lock lk(mu_);
    uint64_t off = act->end;
    for (const Entry& e : batch) {
        const uint64_t len = entry_record_size(e);
        act->add(e.index, e.term, off, len, e.type == raft::EntryType::kConfig);
        off += len;
        cache_push(e);
    }
    if (commit_record) {
        act->add_commit(commit, off);
        durable_commit_.store(commit, std::memory_order_release);
    }
    return Status::ok();
}

Status SegmentedLog::seal_active() {
    // A sealed segment holds exactly its records: dropping the preallocated tail keeps disk
    // use honest. It is synced before the next segment exists, so recovery may treat any
    // damage in a non-last segment as corruption of durable data.
    Segment& s = *segments_.back();
    if (Status st = s.file->truncate(s.end); !st) return st;
    syncs_.fetch_add(1, std::memory_order_relaxed);
    return s.file->datasync();
}

Result<std::unique_ptr<Segment>> SegmentedLog::create_segment(Index first, raft::Term prev_term) {
    // Built under a temporary name and renamed once its header is durable, so a file with
    // a segment name always has a valid header; recovery deletes leftover temporaries.
    const std::string path = join_path(dir_, segment_name(first));
    const std::string tmp = path + kTempSuffix;
    {
        auto f = env_->open(tmp, OpenMode::kCreateTrunc);
        if (!f) return f.status();
        char hdr[kSegmentHeaderSize];
        encode_segment_header(SegmentHeader{first, prev_term}, hdr);
        if (Status s = write_all(*f.value(), 0, hdr, sizeof hdr); !s) return s;
        if (opts_.preallocate)
            if (Status s = f.value()->allocate(0, opts_.segment_bytes); !s) return s;
        if (Status s = (syncs_.fetch_add(1, std::memory_order_relaxed), f.value()->datasync()); !s)
            return s;
    }
    if (Status s = env_->rename(tmp, path); !s) return s;
    if (Status s = env_->sync_dir(dir_); !s) return s;
    auto f = env_->open(path, OpenMode::kReadWrite);
    if (!f) return f.status();
    auto seg = std::make_unique<Segment>();
    seg->path = path;
    seg->first_index = first;
    seg->prev_term = prev_term;
    seg->file = std::move(f.value());
    return seg;
}

Status SegmentedLog::remove_segment_file(const std::string& path) {
    // One directory sync per removal: removals become durable in the order made, so a
    // crash leaves a contiguous run of segments rather than a gap recovery would refuse.
    if (Status s = env_->remove(path); !s) return s;
    return env_->sync_dir(dir_);
}

Status SegmentedLog::truncate_locked(Index from) {
    // Newest segments first, so every crash point leaves a prefix of the old log.
    bool removed = false;
    while (!segments_.empty() && segments_.back()->first_index > from) {
        std::string path = segments_.back()->path;
        segments_.pop_back();
        removed = true;
        if (Status s = remove_segment_file(path); !s) return s;
    }
    cache_drop_from(from);
    if (segments_.empty()) return Status::ok();
    Segment& s = *segments_.back();
    if (from > s.last_index() && !removed) return Status::ok();
    const uint64_t cut = from > s.last_index() ? s.end : s.offset_of(from);
    s.drop_from(from);
    if (Status st = s.file->truncate(cut); !st) return st;
    if (opts_.preallocate)
        if (Status st = s.file->allocate(0, opts_.segment_bytes); !st) return st;
    // Commit records after the cut went with it; their values are below `from` (committed
    // entries are never cut), so one record of the highest restores what they said. It is
    // made durable by the same fdatasync as the cut.
    if (const Index c = durable_commit(); c > 0) {
        char rec[kCommitRecordSize];
        encode_commit_record(c, rec);
        if (Status st = write_all(*s.file, cut, rec, sizeof rec); !st) return st;
        s.add_commit(c, cut);
    }
    // The cut must be durable before new entries are written after it: otherwise a crash
    // could resurrect the old tail behind them.
    syncs_.fetch_add(1, std::memory_order_relaxed);
    return s.file->datasync();
}

Status SegmentedLog::truncate_suffix(Index from) {
    if (!failed_.is_ok()) return failed_;
    std::unique_lock lk(mu_);
    if (from < first_index_locked())
        return Status::invalid_argument("truncate from " + std::to_string(from) +
                                        ": below first index " +
                                        std::to_string(first_index_locked()));
    if (from > last_index_locked()) return Status::ok();
    if (Status s = check_truncation(from); !s) return s;
    if (Status s = truncate_locked(from); !s) {
        lk.unlock();
        return fail(std::move(s));
    }
    return Status::ok();
}

Status SegmentedLog::compact(Index upto) {
    if (!failed_.is_ok()) return failed_;
    std::vector<std::unique_ptr<Segment>> doomed;
    {
        std::unique_lock lk(mu_);
        if (upto > last_index_locked())
            return Status::invalid_argument("compact to " + std::to_string(upto) +
                                            ": beyond last index " +
                                            std::to_string(last_index_locked()));
        const Index limit =
            upto > opts_.compact_keep_entries ? upto - opts_.compact_keep_entries : 0;
        size_t n = 0;
        while (n + 1 < segments_.size() && segments_[n]->last_index() <= limit)
            n++;
        for (size_t k = 0; k < n; k++)
            doomed.push_back(std::move(segments_[k]));
        segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(n));
        cache_drop_below(first_index_locked());
    }
    // Readers can no longer reach these segments, so the files go without the lock held.
    // Oldest first: a crash leaves a contiguous suffix of the log.
    for (auto& seg : doomed) {
        std::string path = seg->path;
        seg.reset();
        if (Status s = remove_segment_file(path); !s) return fail(std::move(s));
    }
    return Status::ok();
}

Status SegmentedLog::reset(Index snapshot_index, raft::Term snapshot_term) {
    if (!failed_.is_ok()) return failed_;
    std::unique_lock lk(mu_);
    // Newest first, as in truncation; the replacement is created only once all are gone, so
    // a crash in between leaves a prefix of the old log, which the caller's snapshot covers.
    while (!segments_.empty()) {
        std::string path = segments_.back()->path;
        segments_.pop_back();
        if (Status s = remove_segment_file(path); !s) {
            lk.unlock();
            return fail(std::move(s));
        }
    }
    cache_.clear();
    cache_used_ = 0;
    auto seg = create_segment(snapshot_index + 1, snapshot_term);
    if (!seg) {
        lk.unlock();
        return fail(seg.status());
    }
    segments_.push_back(std::move(seg.value()));
    return Status::ok();
}

}  // namespace raftd::wal
