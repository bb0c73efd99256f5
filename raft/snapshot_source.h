// SnapshotSource: read access to the bytes of the latest durable snapshot, which the leader
// streams to lagging followers in InstallSnapshot chunks.
//
// Owns: nothing; an interface. wal/ implements it over snapshot files, MemoryStorage in memory.
// Never: raft writes through it; the receiving side writes chunks handed out in Ready.
// Thread rules: called on raft's thread only, like Storage.
#pragma once

#include <cstdint>
#include <string>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::raft {

struct SnapshotBytes {
    std::string data;
    bool done = false;  // data ends at the end of the snapshot
};

class SnapshotSource {
  public:
    virtual ~SnapshotSource() = default;
    // Up to max_bytes of the snapshot at `index` starting at `offset`. kNotFound when that
    // snapshot is no longer the latest (raft then starts over with the new one);
    // kInvalidArgument when offset is past its end.
    virtual Result<SnapshotBytes> read_snapshot(Index index, uint64_t offset,
                                                uint64_t max_bytes) const = 0;
};

}  // namespace raftd::raft
