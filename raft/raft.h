// Raft: the consensus state machine of one node: roles, terms, votes, replication, commit,
// ReadIndex, leader transfer, snapshots and membership (Raft thesis chapters 3, 4, 6, 10).
//
// Owns: the log view, the progress tracker and every volatile protocol variable. Inputs are
// method calls; outputs accumulate in the outbox (messages, read states, snapshot chunks)
// until Node collects them into a Ready.
// Never: I/O, clocks, threads, exceptions or randomness other than the seeded Rng; it reads
// Storage and SnapshotSource, never writes them.
// Thread rules: single-threaded; the caller serializes every call (Node does).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/confchange.h"
#include "raft/config.h"
#include "raft/message.h"
#include "raft/raft_log.h"
#include "raft/ready.h"
#include "raft/snapshot_source.h"
#include "raft/storage.h"
#include "raft/tracker.h"

namespace raftd::raft {

class Raft {
  public:
    static Result<std::unique_ptr<Raft>> create(const Config& cfg, const Storage& storage,
                                                const SnapshotSource* snapshots);

    void tick();
    // m must already be validated (Node::step does) and addressed to this node.
    void step(const Message& m);
    Result<EntryId> propose(Payload data);
    Result<EntryId> propose_conf_change(const ConfChange& cc);
    Status read_index(std::string context, bool allow_lease);
    Status transfer_leader(NodeId to);
    Status campaign();

    // ---- state, for Node and tests ----
    NodeId id() const { return id_; }
    Term term() const { return term_; }
    NodeId vote() const { return vote_; }
    NodeId leader() const { return lead_; }
    Role role() const { return role_; }
    NodeId lead_transferee() const { return lead_transferee_; }
    HardState hard_state() const { return {term_, vote_, log_.committed()}; }
    const HardState& durable_hard_state() const { return durable_hs_; }
    const RaftLog& log() const { return log_; }
    RaftLog& log() { return log_; }
    const Tracker& tracker() const { return trk_; }
    const Config& config() const { return cfg_; }
    bool promotable() const;
    uint64_t uncommitted_bytes() const { return uncommitted_bytes_; }
    // Metadata for a snapshot at i. `handed_out` is the last committed index of the Ready the
    // caller holds (0: none) and `handed_out_conf` its config entries: the application may
    // have applied those entries before advance() reports them (see Node::snapshot_meta).
    Result<SnapshotMeta> snapshot_meta_at(Index i, Index handed_out = 0,
                                          const std::vector<Entry>& handed_out_conf = {}) const;

    // ---- outputs, drained by Node ----
    struct Outgoing {
        Message msg;
        bool after_persist;  // depends on state not yet durable
    };
    std::vector<Outgoing>& outbox() { return outbox_; }
    std::vector<ReadState>& read_states() { return read_states_; }
    std::vector<SnapshotChunk>& snapshot_chunks() { return chunks_; }
    const std::vector<Outgoing>& outbox() const { return outbox_; }
    const std::vector<ReadState>& read_states() const { return read_states_; }
    const std::vector<SnapshotChunk>& snapshot_chunks() const { return chunks_; }
    // With Config::batch_appends, new entries and commit advances ask for one broadcast that
    // Node sends when it builds the next Ready.
    bool bcast_pending() const { return bcast_pending_ && role_ == Role::kLeader; }
    void flush_bcast();

    // ---- the caller's reports, from Node::advance ----
    void on_persisted(const std::optional<HardState>& hs, const std::optional<SnapshotMeta>& snap,
                      const std::optional<EntryId>& last_entry);
    void on_applied(const std::vector<Entry>& config_entries, Index last_applied,
                    uint64_t data_bytes);

  private:
    Raft(const Config& cfg, const Storage& storage, const SnapshotSource* snapshots);
    Status load();

    // roles (raft.cpp)
    void reset(Term term);
    void become_follower(Term term, NodeId lead);
    void become_pre_candidate();
    void become_candidate();
    void become_leader();
    enum class CampaignKind { kPreVote, kElection, kTransfer };
    void hup(CampaignKind kind);
    void start_campaign(CampaignKind kind);
    bool has_unapplied_conf() const;
    void tick_election();
    void tick_heartbeat();
    void reset_randomized_timeout();
    void send(Message m);
    // An answer to `m` of `type`: addressed to its sender, in our term.
    Message reply(const Message& m, MessageType type) const;
    // A refused (pre-)vote, with our commit index and its term, from which a candidate that
    // lags behind it learns (learn_commit_from_rejection).
    Message vote_rejection(const Message& m) const;
    void handle_vote_request(const Message& m);
    void learn_commit_from_rejection(const Message& m);
    void handle_vote_response(const Message& m);
    void step_follower(const Message& m);
    void step_candidate(const Message& m);
    void step_leader(const Message& m);

    // replication (replication.cpp)
    bool send_append(NodeId to, bool send_if_empty = true);
    void bcast_append();
    void request_bcast() {
        if (cfg_.batch_appends)
            bcast_pending_ = true;
        else
            bcast_append();
    }
    uint64_t bcast_heartbeat();
    bool start_snapshot(NodeId to, Progress& pr);
    bool send_snapshot_chunk(NodeId to, Progress& pr);
    bool maybe_commit();
    bool committed_in_term() const;
    void handle_append(const Message& m);
    void handle_heartbeat(const Message& m);
    void handle_snapshot(const Message& m);
    void handle_append_response(const Message& m, Progress& pr);
    void handle_heartbeat_response(const Message& m, Progress& pr);
    void handle_snapshot_response(const Message& m, Progress& pr);
    void update_self_progress();

    // operations and the caller's reports (operations.cpp)
    EntryId append_entry(EntryType type, Payload data);
    void handle_read_request(NodeId from, std::string context, bool allow_lease);
    void deliver_read(NodeId from, Index index, std::string context);
    void release_reads();
    void release_reads_waiting_commit();
    bool lease_valid() const;
    uint64_t tick_of_round(uint64_t round) const;
    void send_timeout_now(NodeId to);
    void hand_off_leadership();
    void apply_conf_entry(const Entry& e);
    void switch_conf(const ConfState& cs, Index index);
    void maybe_auto_leave();

    Config cfg_;
    NodeId id_;
    const Storage& storage_;
    const SnapshotSource* snapshots_;
    RaftLog log_;
    Tracker trk_;
    Rng rng_;

    Term term_ = 0;
    NodeId vote_ = kNoNode;
    NodeId lead_ = kNoNode;
    Role role_ = Role::kFollower;
    HardState durable_hs_;

    uint64_t now_ = 0;  // ticks since start
    int election_elapsed_ = 0;
    int heartbeat_elapsed_ = 0;
    int randomized_timeout_ = 0;

    NodeId lead_transferee_ = kNoNode;
    // A TimeoutNow arrived while a committed configuration change was not yet applied: the
    // campaign it asks for runs as soon as that change is applied (see hup()).
    bool transfer_after_apply_ = false;
    bool lease_revoked_ = false;  // a TimeoutNow went out this term: no more lease reads
    Index pending_conf_index_ = 0;
    uint64_t uncommitted_bytes_ = 0;

    Index conf_index_ = 0;  // index of the entry (or snapshot) that produced the current conf
    std::vector<std::pair<Index, ConfState>> conf_history_;

    struct PendingRead {
        uint64_t round;
        Index index;
        std::string context;
        NodeId from;
    };
    std::deque<PendingRead> reads_;
    struct WaitingRead {
        NodeId from;
        std::string context;
        bool allow_lease;
    };
    std::vector<WaitingRead> reads_waiting_commit_;
    uint64_t round_ = 0;
    std::deque<std::pair<uint64_t, uint64_t>> round_ticks_;  // (round, tick it was sent)

    struct Incoming {
        SnapshotMeta meta;
        uint64_t next_offset = 0;
    };
    std::optional<Incoming> incoming_;

    bool bcast_pending_ = false;
    std::vector<Outgoing> outbox_;
    std::vector<ReadState> read_states_;
    std::vector<SnapshotChunk> chunks_;
};

}  // namespace raftd::raft
