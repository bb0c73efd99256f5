// Node: the public face of raft/. The daemon (and every test) drives one Node per replica:
// calls go in (tick, step, propose, ...), Ready bundles come out, advance() acknowledges.
//
// Owns: the Raft state machine and the bookkeeping of the one outstanding Ready.
// Never: I/O, clocks, threads, or exceptions out of its API; bad input is refused with a
// Status and changes nothing.
// Thread rules: not thread-safe. One thread makes every call (the daemon's loop thread).
//
// The cycle (docs/raft.md, "Persistence contract"):
//   while (node.has_ready()) {
//       Ready rd = node.ready();
//       send(rd.messages);
//       persist(rd.snapshot_chunks, rd.snapshot, rd.entries, rd.hard_state);  // durable
//       send(rd.persisted_messages);
//       deliver(rd.committed_entries, rd.read_states);
//       node.advance();  // "everything in rd is durable and handled"
//   }
// Calls to tick/step/propose may happen while a Ready is outstanding (e.g. while its fsync
// runs); they are reflected in the next Ready.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/confchange.h"
#include "raft/config.h"
#include "raft/raft.h"
#include "raft/ready.h"

namespace raftd::raft {

struct ProgressInfo {
    Index match = 0;
    Index next = 0;
    ProgressState state = ProgressState::kProbe;
    bool is_learner = false;
    bool recent_active = false;
    size_t inflight = 0;
};

struct NodeStatus {
    NodeId id = kNoNode;
    HardState hard;
    SoftState soft;
    Index applied = 0;
    Index first_index = 0;
    Index last_index = 0;
    NodeId lead_transferee = kNoNode;
    ConfState conf;
    std::map<NodeId, ProgressInfo> progress;  // leader only
};

class Node {
  public:
    // Restores from storage. `snapshots` supplies snapshot bytes for InstallSnapshot; without
    // it snapshots are sent as metadata only. Both must outlive the Node.
    static Result<std::unique_ptr<Node>> create(const Config& cfg, const Storage& storage,
                                                const SnapshotSource* snapshots = nullptr);

    // One unit of logical time (election and heartbeat timeouts are counted in ticks).
    void tick();
    // A message from a peer. kInvalidArgument (nothing changes) when it is malformed or not
    // addressed to this node.
    Status step(const Message& m);
    // Leader only: kNotLeader (message names the leader if known), kBusy during a leader
    // transfer or beyond max_uncommitted_bytes.
    Result<EntryId> propose(Payload data);
    // Leader only, one at a time: kBusy while a previous change is not applied;
    // kInvalidArgument when the change is not allowed from the current configuration.
    Result<EntryId> propose_conf_change(const ConfChange& cc);
    // A linearizable read: a ReadState with this context appears in a later Ready once it is
    // safe to read at its index. Followers forward to the leader. kUnavailable without a
    // known leader. A read can be dropped (leadership lost): callers time out and retry.
    // `allow_lease` false: confirmed by a heartbeat round even when Config::lease_read would
    // let the leader answer from its lease (a caller choosing per read).
    Status read_index(std::string context, bool allow_lease = true);
    // Leader only: hand leadership to voter `to` (proposals are refused until it finishes or
    // is abandoned after election_tick ticks).
    Status transfer_leader(NodeId to);
    // Start an election now (with a pre-vote round when configured).
    Status campaign();

    bool has_ready() const;
    // The pending work. Call only when has_ready(); call advance() before the next ready().
    Ready ready();
    // Everything in the last Ready is durable (snapshot, entries, hard state), its messages
    // were handed to the transport and its committed entries delivered. Only now does the
    // leader count its own new entries toward commit (thesis 10.2.1).
    void advance();
    // Like advance(), except that the Ready's `entries` are not durable yet (a leader may
    // write its own entries while it goes on replicating, thesis 10.2.1): they stay out of
    // its quorum and out of committed_entries until entries_persisted() reports them.
    // Only for a Ready with entries and without snapshot, snapshot_chunks or
    // persisted_messages, whose hard_state (if any) needs no sync (commit only).
    // Returns the last entry to report.
    EntryId advance_except_entries();
    // Entries up to `last` (as returned by advance_except_entries, reported in order) are
    // durable. Entries replaced meanwhile (a new leader overwrote them) are ignored.
    void entries_persisted(EntryId last);

    // Metadata for a snapshot of the application's state at index i, with the configuration
    // as of i. i may be any index raft handed out as committed: applied, or in the
    // committed_entries of the Ready not yet advanced (the application may apply them, and
    // snapshot, while the rest of that Ready is still being persisted). The caller writes the
    // snapshot, then may compact storage up to i; raft notices through
    // Storage::first_index() and sends InstallSnapshot to followers that need what was
    // dropped.
    Result<SnapshotMeta> snapshot_meta(Index i) const;

    NodeStatus status() const;
    NodeId id() const { return raft_->id(); }
    NodeId leader() const { return raft_->leader(); }
    Role role() const { return raft_->role(); }
    Term term() const { return raft_->term(); }
    const ConfState& conf_state() const { return raft_->tracker().conf(); }
    // For tests and the simulator: the state machine underneath.
    const Raft& raft() const { return *raft_; }

  private:
    explicit Node(std::unique_ptr<Raft> r);

    std::unique_ptr<Raft> raft_;
    SoftState prev_soft_;
    struct Outstanding {
        std::optional<HardState> hard_state;
        std::optional<SnapshotMeta> snapshot;
        std::optional<EntryId> last_entry;
        std::vector<Entry> config_entries;
        Index last_committed = 0;
        uint64_t data_bytes = 0;
    };
    std::optional<Outstanding> outstanding_;
};

// Validation applied by Node::step, exposed for the transport to reject garbage early.
Status validate_message(const Message& m, NodeId self);

// The log entry that creates a new cluster: at index 1, term 1, a configuration with these
// voters. Write it with HardState{term 1, vote 0, commit 1} on every initial member before
// its first start; nodes that join later start empty and receive it from the leader.
Entry bootstrap_entry(const std::vector<Member>& voters);

}  // namespace raftd::raft
