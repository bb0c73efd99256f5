// The commit stream's read-ahead: committed entries read back from the log for subscribers
// (docs/protocol.md 6.3), each configuration entry with the configuration it establishes.
//
// Owns: a cache of the configuration each config entry seen establishes (index -> conf), so
// a subscriber far behind replays config entries from the nearest known configuration, not
// from the snapshot, and each config entry is replayed once.
// Never: read above the commit index it is given (only committed, locally durable entries
// reach subscribers), or write to the log.
//
// Thread rules: the loop thread (it reads the store's loop-side view).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "ipc/backend.h"
#include "raft/storage.h"

namespace raftd::daemon {

class CommitReader {
  public:
    // `log` must outlive the reader.
    explicit CommitReader(const raft::Storage& log) : log_(log) {}

    // Committed entries from `from` on, at most through `commit`, about `max_bytes` of them
    // (at least one). NOT_FOUND when `from` is above `commit`.
    Result<std::vector<ipc::StreamEntry>> read(raft::Index from, raft::Index commit,
                                               uint64_t max_bytes);

  private:
    // The configuration the config entry `e` establishes.
    Result<raft::ConfState> config_at(const raft::Entry& e);

    const raft::Storage& log_;
    std::map<raft::Index, raft::ConfState> conf_cache_;
};

}  // namespace raftd::daemon
