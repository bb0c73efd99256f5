// The deterministic write plan of the WAL crash test, shared by the child that executes it
// (wal/crash_child_main.cpp) and the parent test that checks what survived a SIGKILL
// (wal/crash_test.cpp).
//
// Owns: a seeded sequence of batches (first index, count, term) and hard states shaped like
// a Raft follower's writes: mostly appends, sometimes a new term that truncates an
// uncommitted suffix, a commit index that only grows and never passes durable entries.
// Never: used outside tests; touches files.
// Thread rules: plain values.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "raft/types.h"
#include "wal/test_util.h"

namespace raftd::wal::testing {

struct PlannedBatch {
    raft::Index first = 0;
    size_t count = 0;
    raft::Term term = 0;
    raft::HardState hs;  // persisted with the batch
};

// An entry's content is a function of (index, term), so any surviving entry can be checked
// for integrity without knowing which batch wrote it.
inline size_t crash_entry_len(raft::Index i, raft::Term t) {
    return static_cast<size_t>((i * 2654435761u + t * 40503u) % 1500);
}
inline raft::Entry crash_entry(raft::Index i, raft::Term t) {
    return make_entry(i, t, crash_entry_len(i, t), t);
}

class CrashPlan {
  public:
    explicit CrashPlan(uint64_t seed) : rng_(seed) {}

    // Batch number k (0-based); batches must be asked for in order.
    const PlannedBatch& batch(size_t k) {
        while (batches_.size() <= k)
            batches_.push_back(next());
        return batches_[k];
    }

    std::vector<raft::Entry> entries(const PlannedBatch& b) const {
        std::vector<raft::Entry> v;
        for (size_t j = 0; j < b.count; j++)
            v.push_back(crash_entry(b.first + j, b.term));
        return v;
    }

  private:
    PlannedBatch next() {
        PlannedBatch b;
        std::uniform_int_distribution<int> pct(0, 99);
        if (last_ > commit_ && pct(rng_) < 12) {
            // A new leader replaces part of the uncommitted suffix.
            term_++;
            b.first = std::uniform_int_distribution<raft::Index>(commit_ + 1, last_)(rng_);
        } else {
            if (pct(rng_) < 5) term_++;
            b.first = last_ + 1;
        }
        b.term = term_;
        b.count = std::uniform_int_distribution<size_t>(1, 24)(rng_);
        // Commit may cover what was durable before this batch; it never shrinks.
        if (b.first - 1 > commit_)
            commit_ = std::uniform_int_distribution<raft::Index>(commit_, b.first - 1)(rng_);
        last_ = b.first + b.count - 1;
        b.hs = {term_, 1 + term_ % 3, commit_};
        return b;
    }

    std::mt19937_64 rng_;
    raft::Term term_ = 1;
    raft::Index last_ = 0, commit_ = 0;
    std::vector<PlannedBatch> batches_;
};

}  // namespace raftd::wal::testing
