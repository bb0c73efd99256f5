// The byte layout of WAL segment files: the segment header and the entry record framing.
// docs/wal-format.md is the normative description; this file must match it byte for byte.
//
// Owns: pure encode/decode functions over memory buffers, little-endian throughout.
// Never: I/O, allocation on the decode path, or trusting a length before it is bounded by
// the bytes actually available.
//
// Thread rules: stateless; callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::wal {

inline constexpr char kSegmentMagic[8] = {'r', 'a', 'f', 't', 'd', 'w', 'a', 'l'};
// Version 2 added commit records (type 2). A reader accepts segments of version 1 and 2, and
// commit records in either (a node upgraded in place adds them to the segment it was
// appending to); new segments are written as version 2, so an older build refuses them by
// name instead of misreading them.
inline constexpr uint32_t kSegmentVersion = 2;
inline constexpr uint32_t kOldestSegmentVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 32;  // magic 8, version 4, first 8, prev_term 8, crc 4
inline constexpr size_t kRecordHeaderSize = 9;    // length 4, type 1, masked crc 4
inline constexpr size_t kEntryFixedSize = 17;     // index 8, term 8, entry type 1
// Entry type 4 on disk is a data entry with its session key (client 8, seq 8) before its
// data (docs/wal-format.md, 2.3); in memory it is EntryType::kData with Entry::session set.
inline constexpr uint8_t kEntrySessionData = 4;
inline constexpr size_t kSessionKeySize = 16;
inline constexpr uint8_t kRecordEntry = 1;
// The commit index known when the batch it ends was written: it becomes durable in the same
// fdatasync as the entries before it (docs/wal-format.md, 2.3 and 5.3).
inline constexpr uint8_t kRecordCommit = 2;
inline constexpr size_t kCommitPayloadSize = 8;
inline constexpr size_t kCommitRecordSize = kRecordHeaderSize + kCommitPayloadSize;
// Largest entry data accepted by append() and by recovery; bounds a corrupt length field.
inline constexpr uint32_t kMaxEntryData = 64u << 20;
inline constexpr uint32_t kMaxPayload = kMaxEntryData + kEntryFixedSize + kSessionKeySize;

inline void put_u32(char* p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = static_cast<char>(v >> (8 * i));
}
inline void put_u64(char* p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t get_u32(const char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}
inline uint64_t get_u64(const char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}

struct SegmentHeader {
    raft::Index first_index = 0;  // index of the first entry this segment may hold
    raft::Term prev_term = 0;     // term of entry first_index - 1 (0 when there is none)
};

void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderSize]);
// Checks magic, version and CRC; `path` only names the file in the error.
Result<SegmentHeader> decode_segment_header(const char* p, size_t n, const std::string& path);

inline size_t entry_record_size(const raft::Entry& e) {
    return kRecordHeaderSize + kEntryFixedSize + (e.session.empty() ? 0 : kSessionKeySize) +
           e.data.size();
}
// Encodes one entry record into out[0, entry_record_size(e)).
void encode_entry_record(const raft::Entry& e, char* out);
// Encodes one commit record into out[0, kCommitRecordSize).
void encode_commit_record(raft::Index commit, char* out);

enum class RecordCheck {
    kOk,
    kZeroHeader,  // nine zero bytes: preallocated space, not a record
    kShort,       // fewer bytes than the header or the length announces
    kBadLength,   // length outside [kEntryFixedSize, kMaxPayload], or not 8 for a commit
    kBadType,     // record type is not one this version writes
    kBadCrc,
    kBadEntry,  // CRC holds but the entry type byte is unknown
};
const char* record_check_name(RecordCheck c);

struct RecordView {
    uint8_t kind = kRecordEntry;  // kRecordEntry or kRecordCommit
    raft::Index commit = 0;       // a commit record's value
    raft::Index index = 0;
    raft::Term term = 0;
    raft::EntryType type = raft::EntryType::kData;
    raft::SessionKey session;  // entry type 4
    const char* data = nullptr;
    size_t data_len = 0;
    size_t total = 0;  // header + payload bytes
};

// Parses and verifies the record at p with `avail` bytes readable.
RecordCheck parse_record(const char* p, size_t avail, RecordView* out);

inline bool valid_entry_type(uint8_t t) {
    return t >= 1 && t <= kEntrySessionData;
}

}  // namespace raftd::wal
