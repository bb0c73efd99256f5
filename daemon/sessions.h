// SessionTable: the exactly-once table (docs/protocol.md, "Exactly-once proposals"). For each
// client session, the highest committed sequence numbers with the (index, term) each
// committed at; which sessions were evicted; the last index applied.
//
// Owns: the table as a pure function of the committed log: every node that applied the same
// entries (from the same snapshot section) holds the same table, so a new leader decides
// retries as the old one would. Eviction is by the log too: a session's window keeps its
// `window` highest seqs, and beyond `max_sessions` the session whose last entry committed
// longest ago is evicted; evicted client ids are remembered (as many as max_sessions, oldest
// forgotten first) so that their retries are EXPIRED, not appended again.
// Never: answer "new" for a key that committed, unless its session was evicted and then
// forgotten among max_sessions later evictions (the documented limit); allocate per applied
// entry once a session's window is full (the proposal path is CPU-bound).
//
// Also the daemon section of a snapshot's data (docs/wal-format.md, 6.1): the table as of the
// snapshot index, framed so the application's bytes follow it.
//
// Thread rules: none of its own, no I/O; the daemon uses it on the loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "raft/node.h"
#include "raft/ready.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raftd::daemon {

class SessionTable {
  public:
    struct Limits {
        size_t max_sessions = 1024;
        size_t window = 256;
    };
    enum class Verdict : uint8_t {
        kNew,        // never committed (as far as the table can tell): may be appended
        kCommitted,  // committed at `id`
        kExpired,    // fell out of the window, or the session was evicted: cannot tell
    };
    struct Lookup {
        Verdict verdict = Verdict::kNew;
        raft::EntryId id;
    };

    SessionTable() = default;
    explicit SessionTable(Limits limits) : limits_(limits) {}

    Lookup check(raft::SessionKey key) const;
    // Applies one committed entry (in index order; every entry, keyed or not).
    void apply(const raft::Entry& e);
    // The last index applied (or restored from a section).
    raft::Index applied() const { return applied_; }

    size_t sessions() const { return sessions_.size(); }
    size_t evicted() const { return tomb_set_.size(); }
    bool empty() const { return sessions_.empty() && tomb_set_.empty(); }

    // The table as bytes (the section's body), and back. decode applies `limits`, so a node
    // configured smaller than the node that wrote the section trims it at once.
    std::string encode() const;
    static Result<SessionTable> decode(std::string_view body, Limits limits);

    friend bool operator==(const SessionTable& a, const SessionTable& b) {
        return a.encode() == b.encode();
    }

  private:
    struct Seq {
        uint64_t seq;
        raft::Index index;
        raft::Term term;
    };
    struct Session {
        std::vector<Seq> window;       // sorted by seq, at most limits_.window
        uint64_t expired_through = 0;  // every seq <= this not in the window: EXPIRED
        raft::Index last_used = 0;     // index of its last committed entry
        std::list<uint64_t>::iterator lru;
    };
    void record(Session& s, uint64_t seq, raft::EntryId id);
    void trim(Session& s);
    void evict_over_limit();

    Limits limits_{};
    raft::Index applied_ = 0;
    std::unordered_map<uint64_t, Session> sessions_;
    std::list<uint64_t> lru_;  // client ids, least recently committed first
    std::deque<uint64_t> tomb_order_;
    std::unordered_set<uint64_t> tomb_set_;
};

// The leader's side of exactly-once (docs/protocol.md, "Exactly-once proposals"): the table
// of delivered entries plus, while this node leads, the keyed entries of its log above them
// (copies a previous leader left uncommitted, and its own in flight). Raft commits only what
// the leader's log holds, so checking a key against all of it before appending keeps every
// key to one committed copy (the argument is in docs/protocol.md).
//
// Owns: the table and that index of the log. Never: let a leader append a key its log
// already holds, or reads the clock or does I/O (the node's log is read in memory).
// Thread rules: the loop thread's, like the table.
class SessionGate {
  public:
    SessionGate() = default;
    explicit SessionGate(SessionTable::Limits limits) : table_(limits) {}

    enum class Action : uint8_t {
        kAppend,     // propose it; then appended()
        kCommitted,  // answer ok at `id`, duplicate
        kExpired,    // answer EXPIRED
        kAwait,      // a copy at `id` may still commit: its fate is the answer
    };
    struct Decision {
        Action action = Action::kAppend;
        raft::EntryId id;
    };
    // What to do with a proposal keyed `key` on this node. `leader`: it may append.
    Decision decide(raft::SessionKey key, bool leader) const;
    // The leader appended `key` at `id`.
    void appended(raft::SessionKey key, raft::EntryId id) { open_[key] = id; }
    // A committed entry was delivered (in index order, every entry).
    void committed(const raft::Entry& e);
    // The node's role or term changed. A leader of a new term indexes the keyed entries of
    // its log above `delivered` (what committed() has seen); any other role forgets them.
    Status role_changed(const raft::Node& node, raft::Index delivered);
    // The table as of a restart or an installed snapshot.
    void reset(SessionTable t);

    const SessionTable& table() const { return table_; }
    size_t open() const { return open_.size(); }

  private:
    struct KeyHash {
        size_t operator()(const raft::SessionKey& k) const {
            return static_cast<size_t>(k.client * 0x9e3779b97f4a7c15ull ^ k.seq);
        }
    };
    SessionTable table_;
    std::unordered_map<raft::SessionKey, raft::EntryId, KeyHash> open_;
    raft::Term leader_term_ = 0;  // 0: not leading
};

// The daemon section framing at the start of a snapshot's data (docs/wal-format.md, 6.1):
// magic "raftdses", u64 body length, u32 masked CRC32C of the body, the body.
inline constexpr size_t kSessionSectionHeader = 20;
std::string session_section(const std::string& body);
// From the first kSessionSectionHeader bytes of a snapshot's data: the body's length when
// they start a section, nullopt when the data is the application's bytes alone.
std::optional<uint64_t> session_section_length(std::string_view head);
// Whether `body` matches the CRC in `head`.
bool session_section_intact(std::string_view head, std::string_view body);

}  // namespace raftd::daemon
