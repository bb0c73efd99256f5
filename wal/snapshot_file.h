// The snapshot file format (docs/wal-format.md, section 6): a 32-byte header, the data, and
// a 16-byte trailer holding the data's size and CRC32C.
//
// Owns: the encoding of header and trailer and the file naming rule.
// Never: I/O (disk_storage.cpp and snapshot_file.cpp do that through Env).
// Thread rules: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::wal {

inline constexpr char kSnapMagic[8] = {'r', 'a', 'f', 't', 's', 'n', 'a', 'p'};
inline constexpr uint32_t kSnapVersion = 1;
inline constexpr size_t kSnapHeaderSize = 32;   // magic 8, version 4, index 8, term 8, crc 4
inline constexpr size_t kSnapTrailerSize = 16;  // data size 8, data crc 4, trailer crc 4

// "<index, 20 digits>-<term, 20 digits>.snap"
std::string snapshot_file_name(raft::Index index, raft::Term term);

void encode_snap_header(raft::Index index, raft::Term term, char out[kSnapHeaderSize]);
// Checks magic, version and CRC; returns index and term through the pointers.
Status decode_snap_header(const char* p, raft::Index* index, raft::Term* term);

// crc is the unmasked CRC32C of the data.
void encode_snap_trailer(uint64_t data_size, uint32_t crc, char out[kSnapTrailerSize]);
Status decode_snap_trailer(const char* p, uint64_t* data_size, uint32_t* crc);

}  // namespace raftd::wal
