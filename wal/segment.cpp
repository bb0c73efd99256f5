#include "wal/segment.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace raftd::wal {

std::string segment_name(Index first_index) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020" PRIu64 ".log", first_index);
    return buf;
}

std::optional<Index> parse_segment_name(const std::string& name) {
    if (name.size() != 24 || name.compare(20, 4, ".log") != 0) return std::nullopt;
    Index v = 0;
    for (int i = 0; i < 20; i++) {
        char c = name[i];
        if (c < '0' || c > '9') return std::nullopt;
        Index next = v * 10 + static_cast<Index>(c - '0');
        if (next / 10 != v) return std::nullopt;  // overflow
        v = next;
    }
    return v;
}

Term Segment::term_at(Index i) const {
    // The last run whose first index is <= i.
    auto it =
        std::upper_bound(term_runs.begin(), term_runs.end(), i,
                         [](Index v, const std::pair<Index, Term>& r) { return v < r.first; });
    return std::prev(it)->second;
}

void Segment::add(Index i, Term t, uint64_t offset, uint64_t record_len, bool config) {
    offsets.push_back(static_cast<uint32_t>(offset));
    if (config) configs.push_back(i);
    if (term_runs.empty() || term_runs.back().second != t) term_runs.emplace_back(i, t);
    end = offset + record_len;
}

void Segment::drop_from(Index i) {
    size_t keep = i - first_index;
    if (keep >= offsets.size()) return;
    end = offsets[keep];
    offsets.resize(keep);
    while (!configs.empty() && configs.back() >= i)
        configs.pop_back();
    while (!term_runs.empty() && term_runs.back().first >= i)
        term_runs.pop_back();
}

namespace {

constexpr size_t kChunk = 256u << 10;

std::string where(const std::string& path, uint64_t off) {
    return path + " offset " + std::to_string(off);
}

// Looks in bytes [from, size) of `region` (which starts at file offset `base`) for a
// record that verifies and carries an index above `after`. Such a record was written after
// the damaged one, so the damage is not a torn final write.
std::optional<std::pair<uint64_t, Index>> find_later_record(const std::string& region,
                                                            uint64_t base, size_t from,
                                                            Index after) {
    const char* p = region.data();
    const size_t n = region.size();
    size_t q = from;
    while (q + kRecordHeaderSize + kEntryFixedSize <= n) {
        // Candidates have the entry record type at q+4; memchr skips zeros and noise fast.
        const void* hit = std::memchr(p + q + 4, kRecordEntry, n - q - 4);
        if (hit == nullptr) break;
        q = static_cast<size_t>(static_cast<const char*>(hit) - p) - 4;
        RecordView v;
        if (parse_record(p + q, n - q, &v) == RecordCheck::kOk && v.index > after)
            return std::make_pair(base + q, v.index);
        q++;
    }
    return std::nullopt;
}

}  // namespace

Result<ScanResult> scan_segment(Env* env, const std::string& path, Index name_index) {
    auto opened = env->open(path, OpenMode::kReadWrite);
    if (!opened) return opened.status();
    ScanResult res;
    auto seg = std::make_unique<Segment>();
    seg->path = path;
    seg->file = std::move(opened.value());
    auto size = seg->file->size();
    if (!size) return size.status();
    res.file_size = size.value();

    char hdr[kSegmentHeaderSize];
    auto got = seg->file->read_at(0, hdr, sizeof hdr);
    if (!got) return got.status();
    auto h = decode_segment_header(hdr, got.value(), path);
    if (!h) return h.status();
    if (h->first_index != name_index)
        return Status::corruption(where(path, 12) + ": header says first index " +
                                  std::to_string(h->first_index) + ", name says " +
                                  std::to_string(name_index));
    seg->first_index = h->first_index;
    seg->prev_term = h->prev_term;

    const uint64_t size_v = res.file_size;
    // The whole file is read front to back: let the disk run ahead of the checks.
    seg->file->will_read(0, size_v);
    std::string buf;
    uint64_t buf_off = kSegmentHeaderSize;  // file offset of buf[0]
    uint64_t pos = kSegmentHeaderSize;
    // Makes buf hold at least min(need, size - pos) bytes starting at pos.
    auto ensure = [&](uint64_t need) -> Status {
        uint64_t want = std::min<uint64_t>(need, size_v - pos);
        if (pos >= buf_off && pos + want <= buf_off + buf.size()) return Status::ok();
        uint64_t len = std::min<uint64_t>(std::max<uint64_t>(want, kChunk), size_v - pos);
        buf.resize(len);
        buf_off = pos;
        return read_exact(*seg->file, pos, buf.data(), len);
    };

    Index expect = seg->first_index;
    Term last_term = seg->prev_term;
    RecordCheck rc = RecordCheck::kOk;
    while (pos < size_v) {
        if (Status s = ensure(kRecordHeaderSize); !s) return s;
        const char* p = buf.data() + (pos - buf_off);
        uint64_t avail = buf_off + buf.size() - pos;
        if (avail >= kRecordHeaderSize) {
            uint32_t len = get_u32(p);
            if (len <= kMaxPayload && avail < kRecordHeaderSize + len) {
                if (Status s = ensure(kRecordHeaderSize + len); !s) return s;
                p = buf.data() + (pos - buf_off);
                avail = buf_off + buf.size() - pos;
            }
        }
        RecordView v;
        rc = parse_record(p, avail, &v);
        if (rc != RecordCheck::kOk) break;
        if (v.kind == kRecordCommit) {
            // Written after the entries of its batch, so it never names an entry not before it.
            if (v.commit >= expect)
                return Status::corruption(
                    where(path, pos) + ": commit record says " + std::to_string(v.commit) +
                    " but the log before it ends at entry index " + std::to_string(expect - 1));
            seg->add_commit(v.commit, pos);
            pos += v.total;
            continue;
        }
        if (v.index != expect)
            return Status::corruption(where(path, pos) + ": record holds entry index " +
                                      std::to_string(v.index) + " where " + std::to_string(expect) +
                                      " was expected");
        if (v.term < last_term)
            return Status::corruption(
                where(path, pos) + ": entry index " + std::to_string(v.index) + " has term " +
                std::to_string(v.term) + " below the previous term " + std::to_string(last_term));
        seg->add(v.index, v.term, pos, v.total, v.type == raft::EntryType::kConfig);
        last_term = v.term;
        expect++;
        pos += v.total;
    }

    if (pos < size_v) {
        const uint64_t bad = pos;
        if (rc == RecordCheck::kBadEntry)
            return Status::corruption(where(path, bad) + ": entry index " + std::to_string(expect) +
                                      ": " + record_check_name(rc));
        // The rest of a preallocated segment (up to its full size) is checked in chunks:
        // only damage, which is rare, needs it in memory whole.
        bool all_zero = true;
        {
            std::string chunk;
            for (uint64_t off = bad; off < size_v && all_zero; off += kChunk) {
                chunk.resize(std::min<uint64_t>(kChunk, size_v - off));
                if (Status s = read_exact(*seg->file, off, chunk.data(), chunk.size()); !s)
                    return s;
                all_zero = std::all_of(chunk.begin(), chunk.end(), [](char c) { return c == 0; });
            }
        }
        if (!all_zero) {
            std::string region(size_v - bad, '\0');
            if (Status s = read_exact(*seg->file, bad, region.data(), region.size()); !s) return s;
            size_t from = rc == RecordCheck::kZeroHeader ? 0 : 1;
            if (auto later = find_later_record(region, bad, from, expect - 1))
                return Status::corruption(
                    where(path, bad) + ": entry index " + std::to_string(expect) + ": " +
                    record_check_name(rc) + ", but a valid record (entry index " +
                    std::to_string(later->second) + ") follows at offset " +
                    std::to_string(later->first) + ", so this is not a torn final write");
            res.bad_offset = bad;
            res.bad_reason = std::string("entry index ") + std::to_string(expect) + ": " +
                             (rc == RecordCheck::kZeroHeader ? "non-zero bytes after zeros"
                                                             : record_check_name(rc));
        }
    }
    res.segment = std::move(seg);
    return res;
}

}  // namespace raftd::wal
