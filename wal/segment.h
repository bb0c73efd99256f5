// Segment: one WAL segment file and the in-memory index of the entries it holds, plus the
// recovery scan that rebuilds that index from the bytes on disk.
//
// Owns: the segment's open File, the offset of every entry record in it, and the terms of
// its entries (as runs, since terms change rarely). Segment names, the scan rules and the
// torn-tail policy are specified in docs/wal-format.md.
// Never: modify a file while scanning. The scan only reports what it found; wal::SegmentedLog
// decides and performs any cut, after every segment has been checked.
//
// Thread rules: none of its own; wal::SegmentedLog guards every Segment with its lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"
#include "wal/env.h"
#include "wal/record.h"

namespace raftd::wal {

using raft::Index;
using raft::Term;

// "00000000000000000001.log": the first index as 20 zero-padded decimal digits.
std::string segment_name(Index first_index);
// Parses a name made by segment_name(); nullopt for anything else (temp files included).
std::optional<Index> parse_segment_name(const std::string& name);
inline constexpr const char* kTempSuffix = ".tmp";

struct Segment {
    std::string path;
    Index first_index = 0;
    Term prev_term = 0;
    std::unique_ptr<File> file;
    // offsets[k] is where the record of entry first_index + k starts.
    std::vector<uint32_t> offsets;
    // (first index of the run, term) for each run of equal terms, ascending.
    std::vector<std::pair<Index, Term>> term_runs;
    uint64_t end = kSegmentHeaderSize;  // end of the last record; the next write goes here
    // The highest commit record in the file (0: none). Commit records are not indexed: they
    // sit after the last entry of a batch, so end_of(i) may include one (readers skip it).
    Index commit = 0;
    // Indexes of the config entries in the file, ascending: start-up rebuilds the membership
    // from these without reading (or holding) the rest of the log.
    std::vector<Index> configs;

    bool empty() const { return offsets.empty(); }
    Index last_index() const { return first_index + offsets.size() - 1; }
    bool contains(Index i) const { return i >= first_index && i < first_index + offsets.size(); }
    uint64_t offset_of(Index i) const { return offsets[i - first_index]; }
    // End of entry i's record: the start of the next one, or `end` for the last.
    uint64_t end_of(Index i) const {
        size_t k = i - first_index + 1;
        return k < offsets.size() ? offsets[k] : end;
    }
    Term term_at(Index i) const;  // requires contains(i)
    Term last_term() const { return empty() ? prev_term : term_runs.back().second; }

    void add(Index i, Term t, uint64_t offset, uint64_t record_len, bool config = false);
    void add_commit(Index c, uint64_t offset) {
        commit = std::max(commit, c);
        end = offset + kCommitRecordSize;
    }
    // Forgets entries >= i (i in [first_index, last_index() + 1]).
    void drop_from(Index i);
};

// What the scan of one segment found.
struct ScanResult {
    std::unique_ptr<Segment> segment;  // header fields and every valid record
    uint64_t file_size = 0;
    // Set when the records stop before the file ends with something other than zeros:
    // where the damage starts and why. Whether that is a torn tail (cut) or corruption
    // (refuse) depends on the segment being the last one; SegmentedLog::open decides.
    std::optional<uint64_t> bad_offset;
    std::string bad_reason;
};

// Reads and verifies every record of the segment at `path` (named for `name_index`).
// Returns kCorruption, naming file, offset and entry index, for damage that cannot be a torn
// write whatever the segment's position: a bad header, a record whose CRC holds but whose
// index is out of sequence or whose entry type is unknown, or a valid record found after a
// damaged one.
Result<ScanResult> scan_segment(Env* env, const std::string& path, Index name_index);

}  // namespace raftd::wal
