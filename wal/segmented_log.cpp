#include "wal/segmented_log.h"

#include <algorithm>
#include <mutex>

namespace raftd::wal {

using raft::Entry;

namespace {
constexpr uint64_t kWarmPageBytes = 4u << 20;
}  // namespace

SegmentedLog::SegmentedLog(Token, Env* env, std::string dir, const SegmentedLogOptions& opts)
    : env_(env), dir_(std::move(dir)), opts_(opts) {}

SegmentedLog::~SegmentedLog() = default;

Result<std::unique_ptr<SegmentedLog>> SegmentedLog::open(Env* env, const std::string& dir,
                                                         const SegmentedLogOptions& opts) {
    if (opts.segment_bytes < 4096 || opts.segment_bytes > (1ull << 30))
        return Status::invalid_argument("wal segment size must be in [4 KiB, 1 GiB], got " +
                                        std::to_string(opts.segment_bytes));
    // Durably: segments are made durable by syncing `dir`, which is worth nothing if
    // `dir`'s own entry is lost in a power cut.
    if (Status s = create_dirs_durably(*env, dir); !s) return s;
    auto log = std::make_unique<SegmentedLog>(Token{}, env, dir, opts);
    if (Status s = log->recover(); !s) return s;
    return log;
}

Status SegmentedLog::recover() {
    auto names = env_->list_dir(dir_);
    if (!names) return names.status();
    std::vector<std::pair<Index, std::string>> found;
    std::vector<std::string> temps;
    for (const auto& n : names.value()) {
        if (auto idx = parse_segment_name(n)) {
            found.emplace_back(*idx, n);
        } else if (n.size() > 4 && n.compare(n.size() - 4, 4, kTempSuffix) == 0 &&
                   parse_segment_name(n.substr(0, n.size() - 4))) {
            temps.push_back(n);
        }
    }
    std::sort(found.begin(), found.end());

    // Pass 1: read and verify everything without changing a byte.
    std::vector<ScanResult> scans;
    for (size_t k = 0; k < found.size(); k++) {
        const auto& [idx, name] = found[k];
        // The disk reads the next segment while this one is checked, so it never waits at a
        // segment boundary (one segment ahead: memory, not the log's size, bounds it).
        if (k + 1 < found.size()) {
            auto next = env_->open(join_path(dir_, found[k + 1].second), OpenMode::kRead);
            if (next) {
                auto size = next.value()->size();
                if (size) next.value()->will_read(0, size.value());
            }
        }
        auto r = scan_segment(env_, join_path(dir_, name), idx);
        if (!r) return r.status();
        scans.push_back(std::move(r.value()));
    }
    for (size_t i = 0; i < scans.size(); i++) {
        const Segment& cur = *scans[i].segment;
        if (scans[i].bad_offset && i + 1 < scans.size())
            return Status::corruption(cur.path + " offset " + std::to_string(*scans[i].bad_offset) +
                                      ": " + scans[i].bad_reason +
                                      "; a newer segment exists, so this was durable data");
        if (i == 0) continue;
        const Segment& prev = *scans[i - 1].segment;
        if (cur.first_index != prev.last_index() + 1)
            return Status::corruption(cur.path + " offset 12: first index " +
                                      std::to_string(cur.first_index) + " does not follow " +
                                      prev.path + " ending at entry index " +
                                      std::to_string(prev.last_index()));
        if (cur.prev_term != prev.last_term())
            return Status::corruption(cur.path + " offset 20: previous term " +
                                      std::to_string(cur.prev_term) + " but " + prev.path +
                                      " ends with term " + std::to_string(prev.last_term()));
    }

    // Pass 2: repairs that lose nothing durable.
    for (const auto& t : temps) {
        if (Status s = env_->remove(join_path(dir_, t)); !s) return s;
        recovery_.temp_files_removed++;
    }
    if (!temps.empty())
        if (Status s = env_->sync_dir(dir_); !s) return s;
    for (auto& sc : scans)
        segments_.push_back(std::move(sc.segment));
    if (!segments_.empty()) {
        Segment& last = *segments_.back();
        const ScanResult& ls = scans.back();
        if (ls.bad_offset) {
            recovery_.torn_tail_cut = true;
            recovery_.torn_tail = last.path + " offset " + std::to_string(*ls.bad_offset) + ": " +
                                  ls.bad_reason + "; " +
                                  std::to_string(ls.file_size - *ls.bad_offset) + " bytes cut";
            if (Status s = last.file->truncate(last.end); !s) return s;
        }
        if (opts_.preallocate && (ls.bad_offset || ls.file_size < opts_.segment_bytes))
            if (Status s = last.file->allocate(0, opts_.segment_bytes); !s) return s;
        if (ls.bad_offset)
            if (Status s = last.file->datasync(); !s) return s;
    }
    for (const auto& seg : segments_)
        durable_commit_.store(std::max(durable_commit(), seg->commit), std::memory_order_release);
    recovery_.segments = segments_.size();
    recovery_.first_index = first_index_locked();
    recovery_.last_index = last_index_locked();

    // Warm the cache with the newest entries so followers near the tail skip the disk.
    if (opts_.cache_bytes > 0 && !segments_.empty()) {
        Index last = last_index_locked(), lo = last + 1;
        uint64_t budget = 0;
        while (lo > first_index_locked()) {
            const Segment* s = find_segment(lo - 1);
            uint64_t sz = s->end_of(lo - 1) - s->offset_of(lo - 1) - 2;  // = Entry::byte_size
            if (budget + sz > opts_.cache_bytes) break;
            budget += sz;
            lo--;
        }
        // In pages: reading the whole tail at once would hold it twice (file bytes and
        // entries), and memory after a restart must stay near the cache's budget.
        while (lo <= last) {
            std::vector<Entry> page;
            uint64_t bytes = 0;
            if (Status s = read_from_disk(lo, last + 1, kWarmPageBytes, page, bytes); !s) return s;
            if (page.empty()) return Status::internal("cache warm-up read no entry");
            for (const auto& e : page)
                cache_push(e);
            lo = page.back().index + 1;
        }
    }
    return Status::ok();
}

Status SegmentedLog::fail(Status s) {
    std::unique_lock lk(mu_);
    if (failed_.is_ok())
        failed_ = Status(s.code(), s.message() + " (the WAL is now failed and accepts no writes)");
    return failed_;
}

Status SegmentedLog::failure() const {
    std::shared_lock lk(mu_);
    return failed_;
}

size_t SegmentedLog::segment_count() const {
    std::shared_lock lk(mu_);
    return segments_.size();
}

Index SegmentedLog::first_index_locked() const {
    return segments_.empty() ? 1 : segments_.front()->first_index;
}

Index SegmentedLog::last_index_locked() const {
    return segments_.empty() ? 0 : segments_.back()->last_index();
}

Index SegmentedLog::first_index() const {
    std::shared_lock lk(mu_);
    return first_index_locked();
}

Index SegmentedLog::last_index() const {
    std::shared_lock lk(mu_);
    return last_index_locked();
}

const Segment* SegmentedLog::find_segment(Index i) const {
    // The last segment whose first index is <= i.
    auto it = std::upper_bound(
        segments_.begin(), segments_.end(), i,
        [](Index v, const std::unique_ptr<Segment>& s) { return v < s->first_index; });
    if (it == segments_.begin()) return nullptr;
    return std::prev(it)->get();
}

Result<raft::Term> SegmentedLog::term_locked(Index i) const {
    const Index first = first_index_locked(), last = last_index_locked();
    if (i + 1 < first)
        return Status::compacted("term of entry " + std::to_string(i) + ": compacted (first is " +
                                 std::to_string(first) + ")");
    if (i > last)
        return Status::not_found("term of entry " + std::to_string(i) + ": beyond last index " +
                                 std::to_string(last));
    if (i + 1 == first) return segments_.empty() ? raft::Term{0} : segments_.front()->prev_term;
    return find_segment(i)->term_at(i);
}

Result<raft::Term> SegmentedLog::term(Index i) const {
    std::shared_lock lk(mu_);
    return term_locked(i);
}

Result<std::vector<Entry>> SegmentedLog::entries(Index lo, Index hi, uint64_t max_bytes) const {
    std::shared_lock lk(mu_);
    const Index first = first_index_locked(), last = last_index_locked();
    if (lo < first)
        return Status::compacted("entries from " + std::to_string(lo) + ": compacted (first is " +
                                 std::to_string(first) + ")");
    if (hi > last + 1)
        return Status::not_found("entries up to " + std::to_string(hi) + ": last index is " +
                                 std::to_string(last));
    std::vector<Entry> out;
    if (lo >= hi) return out;
    uint64_t bytes = 0;
    const Index cache_first = cache_.empty() ? last + 1 : cache_.front().index;
    Index i = lo;
    if (i < cache_first) {
        const Index disk_hi = std::min(hi, cache_first);
        if (Status s = read_from_disk(i, disk_hi, max_bytes, out, bytes); !s) return s;
        i += out.size();
        if (i < disk_hi) return out;  // the byte budget ran out on disk
    }
    for (; i < hi; i++) {
        const Entry& e = cache_[i - cache_first];
        if (!out.empty() && bytes + e.byte_size() > max_bytes) break;
        bytes += e.byte_size();
        out.push_back(e);
    }
    return out;
}

Result<std::vector<Entry>> SegmentedLog::config_entries(Index lo, Index hi) const {
    std::vector<Index> wanted;
    {
        std::shared_lock lk(mu_);
        if (lo < first_index_locked())
            return Status::compacted("entries below " + std::to_string(first_index_locked()));
        if (hi > last_index_locked() + 1)
            return Status::not_found("entries beyond " + std::to_string(last_index_locked()));
        for (const auto& seg : segments_)
            for (Index i : seg->configs)
                if (i >= lo && i < hi) wanted.push_back(i);
    }
    std::vector<Entry> out;
    for (Index i : wanted) {
        auto e = entries(i, i + 1, UINT64_MAX);
        if (!e) return e.status();
        out.push_back(std::move(e->front()));
    }
    return out;
}

Status SegmentedLog::read_from_disk(Index lo, Index hi, uint64_t max_bytes, std::vector<Entry>& out,
                                    uint64_t& bytes) const {
    disk_reads_.fetch_add(1, std::memory_order_relaxed);
    std::string buf;
    Index i = lo;
    while (i < hi) {
        const Segment* seg = find_segment(i);
        const Index seg_hi = std::min(hi, seg->last_index() + 1);
        // Decide how many entries fit the budget from the offsets alone, then read them with
        // one pread.
        Index j = i;
        uint64_t b = bytes;
        while (j < seg_hi) {
            uint64_t sz = seg->end_of(j) - seg->offset_of(j) - 2;
            if ((!out.empty() || j > i) && b + sz > max_bytes) break;
            b += sz;
            j++;
        }
        if (j == i) return Status::ok();
        const uint64_t off = seg->offset_of(i);
        buf.resize(seg->end_of(j - 1) - off);
        if (Status s = read_exact(*seg->file, off, buf.data(), buf.size()); !s) return s;
        size_t pos = 0;
        for (Index k = i; k < j; k++) {
            RecordView v;
            RecordCheck rc = parse_record(buf.data() + pos, buf.size() - pos, &v);
            if (rc == RecordCheck::kOk && v.kind == kRecordCommit) {  // ends a batch: skip it
                pos += v.total;
                k--;
                continue;
            }
            if (rc != RecordCheck::kOk || v.index != k)
                return Status::corruption(
                    seg->path + " offset " + std::to_string(off + pos) + ": entry index " +
                    std::to_string(k) + ": " +
                    (rc == RecordCheck::kOk ? "index mismatch" : record_check_name(rc)));
            out.push_back(
                Entry{v.index, v.term, v.type, raft::Payload(v.data, v.data_len), v.session});
            pos += v.total;
        }
        bytes = b;
        i = j;
        if (j < seg_hi) return Status::ok();
    }
    return Status::ok();
}

void SegmentedLog::cache_push(const Entry& e) {
    if (opts_.cache_bytes == 0) return;
    cache_.push_back(e);
    cache_used_ += e.byte_size();
    while (cache_used_ > opts_.cache_bytes && !cache_.empty()) {
        cache_used_ -= cache_.front().byte_size();
        cache_.pop_front();
    }
}

void SegmentedLog::cache_drop_from(Index i) {
    while (!cache_.empty() && cache_.back().index >= i) {
        cache_used_ -= cache_.back().byte_size();
        cache_.pop_back();
    }
}

void SegmentedLog::cache_drop_below(Index i) {
    while (!cache_.empty() && cache_.front().index < i) {
        cache_used_ -= cache_.front().byte_size();
        cache_.pop_front();
    }
}

}  // namespace raftd::wal
