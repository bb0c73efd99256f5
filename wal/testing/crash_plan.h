// The deterministic write plan of the WAL crash test, shared by the child that executes it
// (wal/testing/crash_child_main.cpp) and the parent test that checks what survived a SIGKILL
// (wal/crash_test.cpp).
//
// Owns: a seeded sequence of steps shaped like a Raft node's writes: mostly appends with a
// hard state, sometimes a new term that truncates an uncommitted suffix, a commit index
// that only grows and never passes durable entries, now and then a snapshot of the
// application (save + compact) or a snapshot installed from a leader (log reset). Also the
// model of what the steps leave behind.
// Never: used outside tests; touches files.
// Thread rules: plain values.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "raft/types.h"
#include "wal/testing/util.h"

namespace raftd::wal::testing {

enum class StepKind { kAppend, kSave, kInstall };

struct PlannedStep {
    StepKind kind = StepKind::kAppend;
    // kAppend: entries first .. first + count - 1 with `term`, then persist `hs`.
    raft::Index first = 0;
    size_t count = 0;
    raft::Term term = 0;
    raft::HardState hs;
    // kSave / kInstall: the snapshot (conf: voter 1).
    raft::Index snap_index = 0;
    raft::Term snap_term = 0;
};

// An entry's content is a function of (index, term), so any surviving entry can be checked
// for integrity without knowing which batch wrote it.
inline size_t crash_entry_len(raft::Index i, raft::Term t) {
    return static_cast<size_t>((i * 2654435761u + t * 40503u) % 1500);
}
inline raft::Entry crash_entry(raft::Index i, raft::Term t) {
    return make_entry(i, t, crash_entry_len(i, t), t);
}
inline std::string crash_snapshot_data(raft::Index i, raft::Term t) {
    return entry_data(i, 3000 + (i * 7919) % 20000, t + 1000);
}
inline raft::SnapshotMeta crash_snapshot_meta(const PlannedStep& s) {
    raft::SnapshotMeta m;
    m.index = s.snap_index;
    m.term = s.snap_term;
    m.conf.voters = {1};
    m.conf.addrs = {{1, "n1:1"}};
    return m;
}

// What the steps so far leave durable.
struct CrashModel {
    std::vector<raft::Term> terms{0};  // terms[i] = term of entry i; 0 = covered by snapshot
    raft::Index snap_index = 0;
    raft::Term snap_term = 0;
    raft::HardState hs;

    raft::Index last() const { return terms.size() - 1; }
    void apply(const PlannedStep& s) {
        switch (s.kind) {
            case StepKind::kAppend:
                terms.resize(s.first);
                terms.insert(terms.end(), s.count, s.term);
                hs = s.hs;
                break;
            case StepKind::kSave:
                snap_index = s.snap_index;
                snap_term = s.snap_term;
                break;
            case StepKind::kInstall:
                terms.assign(s.snap_index + 1, 0);
                snap_index = s.snap_index;
                snap_term = s.snap_term;
                hs.commit = std::max(hs.commit, s.snap_index);
                break;
        }
    }
};

class CrashPlan {
  public:
    explicit CrashPlan(uint64_t seed) : rng_(seed) {}

    // Step number k (0-based).
    const PlannedStep& step(size_t k) {
        while (steps_.size() <= k)
            steps_.push_back(next());
        return steps_[k];
    }

    static std::vector<raft::Entry> entries(const PlannedStep& b) {
        std::vector<raft::Entry> v;
        for (size_t j = 0; j < b.count; j++)
            v.push_back(crash_entry(b.first + j, b.term));
        return v;
    }

  private:
    PlannedStep next() {
        PlannedStep b;
        const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
        const raft::Index last = model_.last(), commit = model_.hs.commit;
        if (roll < 4 && commit > model_.snap_index && model_.terms[commit] != 0) {
            b.kind = StepKind::kSave;
            b.snap_index = commit;
            b.snap_term = model_.terms[commit];
        } else if (roll < 6) {
            b.kind = StepKind::kInstall;
            b.snap_index = last + 1 + std::uniform_int_distribution<raft::Index>(0, 40)(rng_);
            b.snap_term = term_;
        } else {
            if (last > commit && roll < 18) {
                // A new leader replaces part of the uncommitted suffix.
                term_++;
                b.first = std::uniform_int_distribution<raft::Index>(commit + 1, last)(rng_);
            } else {
                if (roll < 23) term_++;
                b.first = last + 1;
            }
            b.term = term_;
            b.count = std::uniform_int_distribution<size_t>(1, 24)(rng_);
            // Commit may cover what was durable before this batch; it never shrinks.
            raft::Index c = commit;
            if (b.first - 1 > c)
                c = std::uniform_int_distribution<raft::Index>(c, b.first - 1)(rng_);
            b.hs = {term_, 1 + term_ % 3, c};
        }
        model_.apply(b);
        return b;
    }

    std::mt19937_64 rng_;
    raft::Term term_ = 1;
    CrashModel model_;
    std::vector<PlannedStep> steps_;
};

}  // namespace raftd::wal::testing
