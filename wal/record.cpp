#include "wal/record.h"

#include "raft/enum_name.h"
#include "wal/crc32c.h"

namespace raftd::wal {

void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderSize]) {
    std::memcpy(out, kSegmentMagic, 8);
    put_u32(out + 8, kSegmentVersion);
    put_u64(out + 12, h.first_index);
    put_u64(out + 20, h.prev_term);
    put_u32(out + 28, crc32c::mask(crc32c::value(out, 28)));
}

Result<SegmentHeader> decode_segment_header(const char* p, size_t n, const std::string& path) {
    if (n < kSegmentHeaderSize)
        return Status::corruption(path + " offset 0: segment header truncated (" +
                                  std::to_string(n) + " of 32 bytes)");
    if (std::memcmp(p, kSegmentMagic, 8) != 0)
        return Status::corruption(path + " offset 0: not a raftd WAL segment (bad magic)");
    if (crc32c::unmask(get_u32(p + 28)) != crc32c::value(p, 28))
        return Status::corruption(path + " offset 0: segment header CRC mismatch");
    uint32_t version = get_u32(p + 8);
    if (version < kOldestSegmentVersion || version > kSegmentVersion)
        return Status::corruption(path + " offset 0: unknown segment format version " +
                                  std::to_string(version) + " (this build reads version " +
                                  std::to_string(kSegmentVersion) + ")");
    SegmentHeader h;
    h.first_index = get_u64(p + 12);
    h.prev_term = get_u64(p + 20);
    return h;
}

void encode_entry_record(const raft::Entry& e, char* out) {
    const size_t key = e.session.empty() ? 0 : kSessionKeySize;
    const uint32_t len = static_cast<uint32_t>(kEntryFixedSize + key + e.data.size());
    put_u32(out, len);
    out[4] = static_cast<char>(kRecordEntry);
    char* payload = out + kRecordHeaderSize;
    put_u64(payload, e.index);
    put_u64(payload + 8, e.term);
    payload[16] = static_cast<char>(key ? kEntrySessionData : static_cast<uint8_t>(e.type));
    if (key) {
        put_u64(payload + kEntryFixedSize, e.session.client);
        put_u64(payload + kEntryFixedSize + 8, e.session.seq);
    }
    if (!e.data.empty()) std::memcpy(payload + kEntryFixedSize + key, e.data.data(), e.data.size());
    // The CRC covers the type byte and the payload, in that order.
    uint32_t crc = crc32c::extend(0, out + 4, 1);
    crc = crc32c::extend(crc, payload, len);
    put_u32(out + 5, crc32c::mask(crc));
}

void encode_commit_record(raft::Index commit, char* out) {
    put_u32(out, static_cast<uint32_t>(kCommitPayloadSize));
    out[4] = static_cast<char>(kRecordCommit);
    put_u64(out + kRecordHeaderSize, commit);
    uint32_t crc = crc32c::extend(0, out + 4, 1);
    crc = crc32c::extend(crc, out + kRecordHeaderSize, kCommitPayloadSize);
    put_u32(out + 5, crc32c::mask(crc));
}

constexpr EnumName<RecordCheck> kRecordCheckNames[] = {
    {RecordCheck::kOk, "ok"},
    {RecordCheck::kZeroHeader, "zero bytes (preallocated space)"},
    {RecordCheck::kShort, "incomplete record"},
    {RecordCheck::kBadLength, "record length out of range"},
    {RecordCheck::kBadType, "unknown record type"},
    {RecordCheck::kBadCrc, "record CRC mismatch"},
    {RecordCheck::kBadEntry, "unknown entry type"},
};

const char* record_check_name(RecordCheck c) {
    return enum_name(c, kRecordCheckNames, "?");
}

RecordCheck parse_record(const char* p, size_t avail, RecordView* out) {
    if (avail < kRecordHeaderSize) {
        for (size_t i = 0; i < avail; i++)
            if (p[i] != 0) return RecordCheck::kShort;
        return avail == 0 ? RecordCheck::kShort : RecordCheck::kZeroHeader;
    }
    const uint32_t len = get_u32(p);
    const uint8_t type = static_cast<uint8_t>(p[4]);
    const uint32_t stored = get_u32(p + 5);
    if (len == 0 && type == 0 && stored == 0) return RecordCheck::kZeroHeader;
    if (type != kRecordEntry && type != kRecordCommit) return RecordCheck::kBadType;
    if (type == kRecordCommit ? len != kCommitPayloadSize
                              : len < kEntryFixedSize || len > kMaxPayload)
        return RecordCheck::kBadLength;
    if (avail - kRecordHeaderSize < len) return RecordCheck::kShort;
    const char* payload = p + kRecordHeaderSize;
    uint32_t crc = crc32c::extend(0, p + 4, 1);
    crc = crc32c::extend(crc, payload, len);
    if (crc32c::unmask(stored) != crc) return RecordCheck::kBadCrc;
    out->kind = type;
    out->total = kRecordHeaderSize + len;
    if (type == kRecordCommit) {
        out->commit = get_u64(payload);
        return RecordCheck::kOk;
    }
    const uint8_t etype = static_cast<uint8_t>(payload[16]);
    if (!valid_entry_type(etype)) return RecordCheck::kBadEntry;
    out->index = get_u64(payload);
    out->term = get_u64(payload + 8);
    size_t key = 0;
    if (etype == kEntrySessionData) {
        // A session entry too short for its key is refused like an unknown entry type: its
        // CRC held, so it is never a torn write.
        if (len < kEntryFixedSize + kSessionKeySize) return RecordCheck::kBadEntry;
        key = kSessionKeySize;
        out->type = raft::EntryType::kData;
        out->session = {get_u64(payload + kEntryFixedSize), get_u64(payload + kEntryFixedSize + 8)};
        if (out->session.client == 0) return RecordCheck::kBadEntry;
    } else {
        out->type = static_cast<raft::EntryType>(etype);
        out->session = {};
    }
    out->data = payload + kEntryFixedSize + key;
    out->data_len = len - kEntryFixedSize - key;
    return RecordCheck::kOk;
}

}  // namespace raftd::wal
