// PendingTable: the requests waiting for their raft entry to commit (client proposals and the
// membership change), keyed by the entry's (index, term), and what became of each entry as
// far as this node can tell.
//
// Owns: the waiting requests, each with an optional deadline, and the rules that answer them:
// - an entry committed at index i with term t answers every request at index i: the one with
//   term t committed; any other did not (a different entry committed in its place);
// - a request below i (the commit stream skipped it: a snapshot was installed over it) is
//   decided by the committed (i, t) where Raft allows: a request of term t committed (only
//   term t's leader, this node, made entries of term t, and Log Matching carries them into
//   every log holding (i, t)); one of a later term did not (terms never decrease along a
//   log); one of an earlier term may have, so its fate is unknown;
// - a deadline passing, or the node stopping, leaves the fate unknown.
// Never: answer "not committed" unless a different entry is known to have committed at the
// request's index (docs/protocol.md: UNAVAILABLE means definitely not committed); answer a
// request twice or drop one unanswered (fail_all answers everything left).
//
// Thread rules: none of its own, no I/O, no clock (times are passed in); the daemon uses it
// on the loop thread. A Resolve callback may call back into the table.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/backend.h"
#include "raft/ready.h"

namespace raftd::daemon {

enum class Fate : uint8_t {
    kCommitted,     // the request's entry committed at its (index, term)
    kNotCommitted,  // a different entry committed at its index: the request's never will
    kUnknown,       // it may or may not commit (skipped by a snapshot, deadline, stop)
};

std::string_view fate_name(Fate f);  // "committed", "not committed", "unknown"

struct Resolution {
    Fate fate = Fate::kUnknown;
    raft::EntryId id;       // the request's entry
    std::string why;        // for an error message; empty when committed
    bool stopping = false;  // kUnknown because the node is stopping
};

class PendingTable {
  public:
    using Resolve = std::function<void(const Resolution&)>;

    // Waits for the entry `id` of this node's log (what Node::propose returned, or an entry
    // of an earlier term a leader found in its log: the rules above hold for any entry of
    // the log of the node that decides). Several requests may wait on one id (a retry of a
    // keyed proposal waits on its first copy); each is answered.
    // deadline 0: none until orphan() sets one; `late` is what a passing deadline answers.
    void add(raft::EntryId id, Resolve resolve, uint64_t deadline = 0, std::string late = {});
    // The entry `e` was committed (delivered to the application, in index order).
    void committed(raft::EntryId e);
    // A snapshot through `snap` was installed: the commit stream goes on after snap.index,
    // and what it covered is never delivered.
    void snapshot_installed(raft::EntryId snap);
    // Requests of a term below `term` without a deadline get `deadline`: this node no longer
    // leads the term they were proposed in, so the log that decides them is another leader's,
    // which may never reach their index.
    void orphan(raft::Term term, uint64_t deadline, const std::string& late);
    // Answers every request whose deadline is at or before `now` (fate unknown).
    void expire(uint64_t now);
    // Answers everything left, fate unknown, marked stopping.
    void fail_all(const std::string& why);

    size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }

  private:
    struct Item {
        Resolve resolve;
        uint64_t deadline = 0;
        std::string late;
    };
    using Key = std::pair<raft::Index, raft::Term>;
    // Decides every request at or below the committed (e.index, e.term).
    void decide_through(raft::EntryId e, bool by_snapshot);
    void note_deadline(uint64_t deadline);
    // Calls each resolution's callback, after the items left the table (re-entrancy).
    static void answer(std::vector<std::pair<Item, Resolution>>& out);

    std::multimap<Key, Item> items_;
    uint64_t next_deadline_ = 0;  // the earliest deadline set (0: none), maybe passed
};

// What a client's proposal is answered with (docs/protocol.md 4.2 `propose` and 5).
ipc::Outcome<ipc::ProposeReply> proposal_reply(const Resolution& r);

}  // namespace raftd::daemon
