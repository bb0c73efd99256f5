// RaftLog: raft's in-memory view of its log, durable entries in Storage plus the unstable
// tail that the caller has not yet reported persisted, and the commit and applied indexes.
// (The log files on disk are wal::SegmentedLog's; this class never sees them.)
//
// Owns: the unstable entries (and a received snapshot not yet installed), what of them was
// handed out in the outstanding Ready, and the indexes committed/applied.
// Never: writes storage; truncates a committed entry; hands out a committed entry that is not
// durable locally.
// Thread rules: single-threaded, owned by one Raft.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "raft/status.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raftd::raft {

class RaftLog {
  public:
    explicit RaftLog(const Storage& storage);

    Index first_index() const;
    Index last_index() const;
    Term last_term() const;
    // Term of entry i; kCompacted below the first index - 1, kNotFound above the last index.
    Result<Term> term(Index i) const;
    Term term_or_zero(Index i) const;
    bool match_term(Index i, Term t) const;
    // Entries in [lo, hi) limited to max_bytes (at least one entry); 0 = unlimited.
    Result<std::vector<Entry>> slice(Index lo, Index hi, uint64_t max_bytes) const;

    // Thesis 3.6.1: a voter grants only to a candidate whose log is at least as up-to-date.
    bool is_up_to_date(Index last, Term t) const;

    // Follower side of AppendEntries: on a match at (prev, prev_term) appends what is new,
    // truncating a conflicting suffix, advances commit to min(commit, last new index) and
    // returns that last new index. nullopt when prev does not match (nothing changes) or the
    // entries would overwrite a committed entry (a misbehaving leader; nothing changes).
    std::optional<Index> maybe_append(Index prev, Term prev_term, Index commit,
                                      const std::vector<Entry>& ents);
    // Leader side: entries start at last_index() + 1.
    void append(std::vector<Entry> ents);

    // The largest index <= i whose term is <= t, and its term: where a log that has term t at
    // some index may match ours (the fast backtracking hint of thesis 5.3).
    std::pair<Index, Term> find_conflict_by_term(Index i, Term t) const;

    Index committed() const { return committed_; }
    Index applied() const { return applied_; }
    void commit_to(Index i);  // never moves backwards; clamped by the caller
    void applied_to(Index i) { applied_ = i; }

    // A snapshot received from the leader replaces the whole log until the caller installs it.
    void restore(const SnapshotMeta& meta);
    bool has_pending_snapshot() const { return snapshot_.has_value(); }
    const std::optional<SnapshotMeta>& pending_snapshot() const { return snapshot_; }

    // The last index known durable: entries below the unstable tail.
    Index durable_last() const { return offset_ - 1; }

    // ---- Ready support ----
    // Unstable entries not yet handed out, and whether the pending snapshot was handed out.
    std::vector<Entry> next_unstable() const;
    bool has_next_unstable() const;
    std::optional<SnapshotMeta> next_snapshot() const;
    void mark_handed_out(Index last_entry, bool snapshot);
    // Committed, durable entries after `applied` (max_bytes as in slice).
    bool has_next_committed() const;
    std::vector<Entry> next_committed(uint64_t max_bytes) const;
    // The caller persisted what it was handed: entries up to (i, t), the snapshot at index i.
    void stable_to(Index i, Term t);
    void stable_snapshot_to(Index i);

  private:
    std::optional<Term> unstable_term(Index i) const;
    void truncate_and_append(const std::vector<Entry>& ents);

    const Storage& storage_;
    std::optional<SnapshotMeta> snapshot_;  // received, not yet installed by the caller
    bool snapshot_handed_out_ = false;
    std::vector<Entry> unstable_;  // entries from offset_ on
    Index offset_ = 1;             // index of unstable_[0]
    Index handed_out_ = 0;         // last unstable index given in a Ready
    Index committed_ = 0;
    Index applied_ = 0;
};

}  // namespace raftd::raft
