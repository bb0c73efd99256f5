// Storage: the read-only view of the durable log that the raft state machine consults.
//
// Owns: nothing; it is an interface. wal::DiskStorage implements it over the data directory, and
// raft::MemoryStorage implements it in memory for tests and the simulator.
// Never: raft/ writes through this interface. Writes happen in the caller (daemon/ or a
// test) from Ready bundles, and the caller reports them back (see docs/raft.md).
//
// Thread rules: raft calls it on its own thread only; an implementation that is also
// written from another thread must make reads see only what it reported as durable (the
// daemon's wal::DiskStorage is written on a storage thread while raft reads on the loop
// thread).
#pragma once

#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::raft {

struct InitialState {
    HardState hard;
    ConfState conf;  // the latest configuration known durable (snapshot or config entry)
};

class Storage {
  public:
    virtual ~Storage() = default;

    // Hard state and configuration as recovered at start-up.
    virtual InitialState initial_state() const = 0;

    // Entries in [lo, hi), stopping early once their byte_size() sum would exceed max_bytes
    // (always at least one entry when lo < hi). kCompacted when lo < first_index();
    // kNotFound when hi > last_index() + 1.
    virtual Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const = 0;

    // Term of entry i, for first_index() - 1 <= i <= last_index() (first_index() - 1 is the
    // snapshot's index and answers with the snapshot's term). kCompacted below, kNotFound above.
    virtual Result<Term> term(Index i) const = 0;

    // Index of the first entry still in the log (snapshot index + 1 when compacted; 1 for a
    // new log). An empty log has last_index() == first_index() - 1.
    virtual Index first_index() const = 0;
    virtual Index last_index() const = 0;

    // Metadata of the latest durable snapshot; index 0 when there is none.
    virtual SnapshotMeta snapshot_meta() const = 0;

    // The config entries among [lo, hi), in order; same errors as entries(). Raft calls it
    // at start-up to rebuild its configuration from the committed log. The default pages
    // through entries() with a bounded byte budget, so memory does not follow the log's
    // size; an implementation that indexes its config entries should answer from the index.
    virtual Result<std::vector<Entry>> config_entries(Index lo, Index hi) const;
};

}  // namespace raftd::raft
