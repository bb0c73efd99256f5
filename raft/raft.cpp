// Roles, terms, elections and the dispatch of incoming messages (thesis 3.3-3.4, 9.6).
#include "raft/raft.h"

#include <algorithm>

#include "raft/confchange_codec.h"
#include "raft/enum_name.h"

namespace raftd::raft {

constexpr EnumName<Role> kRoleNames[] = {
    {Role::kFollower, "follower"},
    {Role::kPreCandidate, "pre-candidate"},
    {Role::kCandidate, "candidate"},
    {Role::kLeader, "leader"},
};

std::string_view role_name(Role r) {
    return enum_name(r, kRoleNames, "unknown");
}

Raft::Raft(const Config& cfg, const Storage& storage, const SnapshotSource* snapshots)
    : cfg_(cfg),
      id_(cfg.id),
      storage_(storage),
      snapshots_(snapshots),
      log_(storage),
      trk_(cfg.max_inflight_msgs, cfg.max_inflight_bytes),
      rng_(cfg.seed ^ (cfg.id * 0x9e3779b97f4a7c15ULL)) {}

Result<std::unique_ptr<Raft>> Raft::create(const Config& cfg, const Storage& storage,
                                           const SnapshotSource* snapshots) {
    if (Status st = cfg.validate(); !st) return st;
    std::unique_ptr<Raft> r(new Raft(cfg, storage, snapshots));
    if (Status st = r->load(); !st) return st;
    return r;
}

// Restores term, vote and commit from storage and recomputes the configuration as of the
// commit index: the snapshot's, then every committed config entry replayed in order. Using
// the commit index rather than `applied` matters after a restart: the application re-applies
// committed entries only when it handles the first Ready, and until then a node that
// forgot its configuration could neither campaign nor count votes.
Status Raft::load() {
    InitialState init = storage_.initial_state();
    HardState hs = init.hard;
    SnapshotMeta snap = storage_.snapshot_meta();
    Index last = storage_.last_index();
    if (storage_.first_index() > snap.index + 1) {
        // Entries were dropped that no snapshot covers: a lagging follower could never catch up.
        return Status::corruption("storage: log starts after the snapshot");
    }
    if (hs.commit > last) {
        return Status::corruption("storage: commit index " + std::to_string(hs.commit) +
                                  " is beyond the last entry " + std::to_string(last));
    }
    hs.commit = std::max(hs.commit, snap.index);
    Index applied = std::max(cfg_.applied, snap.index);
    if (applied > hs.commit) {
        return Status::invalid_argument("config: applied " + std::to_string(applied) +
                                        " is beyond the commit index " + std::to_string(hs.commit));
    }
    log_.commit_to(hs.commit);
    log_.applied_to(applied);

    ConfState conf = snap.conf;
    conf_index_ = snap.index;
    conf_history_.push_back({snap.index, conf});
    if (hs.commit > snap.index) {
        // Only the config entries: a node with a long log must not hold all of it in memory
        // (nor read it) to learn its configuration. Nothing is unstable yet, so the storage
        // alone answers.
        auto ents = storage_.config_entries(snap.index + 1, hs.commit + 1);
        if (!ents) return ents.status();
        for (const Entry& e : *ents) {
            if (e.type != EntryType::kConfig) continue;
            auto cc = decode_conf_change(e.data.view());
            if (!cc) return cc.status();
            auto next = apply_conf_change(conf, *cc);
            if (!next) continue;  // refused identically when it was first applied
            conf = *next;
            conf_index_ = e.index;
            conf_history_.push_back({e.index, conf});
        }
    }
    trk_.set_conf(conf, log_.last_index() + 1);
    term_ = hs.term;
    vote_ = hs.vote;
    durable_hs_ = hs;
    become_follower(term_, kNoNode);
    return Status::ok();
}

bool Raft::promotable() const {
    return trk_.is_voter(id_) && !log_.has_pending_snapshot();
}

void Raft::reset_randomized_timeout() {
    randomized_timeout_ = static_cast<int>(
        rng_.uniform(cfg_.election_tick, 2 * static_cast<uint64_t>(cfg_.election_tick)));
}

void Raft::reset(Term term) {
    if (term_ != term) {
        term_ = term;
        vote_ = kNoNode;
    }
    lead_ = kNoNode;
    bcast_pending_ = false;
    election_elapsed_ = 0;
    heartbeat_elapsed_ = 0;
    reset_randomized_timeout();
    lead_transferee_ = kNoNode;
    transfer_after_apply_ = false;
    lease_revoked_ = false;
    trk_.reset_votes();
    trk_.reset_progress(log_.last_index() + 1);
    pending_conf_index_ = 0;
    uncommitted_bytes_ = 0;
    reads_.clear();
    reads_waiting_commit_.clear();
    round_ = 0;
    round_ticks_.clear();
    incoming_.reset();
}

void Raft::become_follower(Term term, NodeId lead) {
    reset(term);
    lead_ = lead;
    role_ = Role::kFollower;
}

void Raft::become_pre_candidate() {
    // A pre-candidate changes neither term nor vote: losing a pre-vote leaves no trace.
    role_ = Role::kPreCandidate;
    lead_ = kNoNode;
    trk_.reset_votes();
}

void Raft::become_candidate() {
    reset(term_ + 1);
    vote_ = id_;
    role_ = Role::kCandidate;
}

void Raft::become_leader() {
    reset(term_);
    role_ = Role::kLeader;
    lead_ = id_;
    if (Progress* self = trk_.find(id_)) {
        self->become_replicate();
        self->match = log_.durable_last();
        self->next = log_.last_index() + 1;
        self->recent_active = true;
    }
    // Conservatively block configuration changes until everything in the log is applied:
    // an unapplied config entry from a previous term may still be in the log.
    pending_conf_index_ = log_.last_index();
    // Thesis 3.6.2: an entry of the new term lets earlier entries commit (Figure 8).
    append_entry(EntryType::kNoop, Payload());
}

// Whether a committed configuration change is not in force yet.
bool Raft::has_unapplied_conf() const {
    Index from = std::max(log_.applied(), conf_index_) + 1;
    if (log_.committed() < from) return false;
    auto ents = log_.slice(from, log_.committed() + 1, 0);
    if (!ents) return true;  // cannot tell: be safe and wait
    for (const Entry& e : *ents) {
        if (e.type == EntryType::kConfig) return true;
    }
    return false;
}

void Raft::hup(CampaignKind kind) {
    if (role_ == Role::kLeader || !promotable()) return;
    // A committed but unapplied configuration change may remove us or change the quorum;
    // campaigning under the old configuration could elect a leader the new one would not.
    if (has_unapplied_conf()) {
        // A leader that removes itself sends TimeoutNow right after applying the removal,
        // typically in the same batch as the commit index: the target has the change
        // committed but not yet applied. Dropping the request would leave the cluster without
        // a leader for an election timeout; run it once the change is applied instead.
        if (kind == CampaignKind::kTransfer) transfer_after_apply_ = true;
        return;
    }
    transfer_after_apply_ = false;
    if (kind == CampaignKind::kPreVote && !cfg_.pre_vote) kind = CampaignKind::kElection;
    start_campaign(kind);
}

void Raft::start_campaign(CampaignKind kind) {
    Term vote_term;
    MessageType type;
    if (kind == CampaignKind::kPreVote) {
        become_pre_candidate();
        vote_term = term_ + 1;
        type = MessageType::kPreVote;
    } else {
        become_candidate();
        vote_term = term_;
        type = MessageType::kVote;
    }
    trk_.record_vote(id_, true);
    if (trk_.tally() == VoteResult::kWon) {
        if (kind == CampaignKind::kPreVote) {
            start_campaign(CampaignKind::kElection);
        } else {
            become_leader();
        }
        return;
    }
    for (NodeId id : trk_.voters()) {
        if (id == id_) continue;
        Message m;
        m.type = type;
        m.to = id;
        m.term = vote_term;
        m.index = log_.last_index();
        m.log_term = log_.last_term();
        m.transfer = kind == CampaignKind::kTransfer;
        send(std::move(m));
    }
}

void Raft::send(Message m) {
    m.from = id_;
    // A leader may send before its own log write is durable (thesis 10.2.1), but never before
    // the term it speaks in is durable: a crash could otherwise let it lead that term twice.
    bool after_persist = !(role_ == Role::kLeader && durable_hs_.term == term_);
    outbox_.push_back({std::move(m), after_persist});
}

void Raft::tick() {
    ++now_;
    if (role_ == Role::kLeader) {
        tick_heartbeat();
    } else {
        tick_election();
    }
}

void Raft::tick_election() {
    ++election_elapsed_;
    if (promotable() && election_elapsed_ >= randomized_timeout_) {
        election_elapsed_ = 0;
        hup(CampaignKind::kPreVote);
    }
}

void Raft::tick_heartbeat() {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    if (election_elapsed_ >= cfg_.election_tick) {
        election_elapsed_ = 0;
        if (cfg_.check_quorum) {
            // Thesis 6.2: a leader that cannot hear a quorum steps down so clients can find
            // the real one.
            bool active = trk_.quorum_active();
            for (auto& [id, pr] : trk_.progress())
                pr.recent_active = id == id_;
            if (!active) {
                become_follower(term_, kNoNode);
                return;
            }
        }
        lead_transferee_ = kNoNode;  // a transfer that did not finish in time is abandoned
        // A leader that is no longer a voter keeps trying to hand over (thesis 4.2.2).
        if (!trk_.is_voter(id_)) hand_off_leadership();
        if (role_ != Role::kLeader) return;
    }
    if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
        heartbeat_elapsed_ = 0;
        bcast_heartbeat();
    }
}

void Raft::step(const Message& m) {
    if ((m.type == MessageType::kVoteResponse || m.type == MessageType::kPreVoteResponse) &&
        m.reject) {
        learn_commit_from_rejection(m);
    }
    bool from_leader = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                       m.type == MessageType::kSnapshot;
    bool vote_request = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
    if (m.term > term_) {
        if (vote_request) {
            // Thesis 4.2.3: while we hear from a leader, a vote request is a disruption (a
            // removed or partitioned node), not an election, unless the leader asked for it.
            // With lease reads, a node just started keeps the promise it may have made before
            // a crash (no vote within an election timeout of hearing a leader): it has
            // forgotten when it last heard one, so it waits a whole election timeout.
            bool in_lease = cfg_.check_quorum &&
                            ((lead_ != kNoNode && election_elapsed_ < cfg_.election_tick) ||
                             (cfg_.lease_read && now_ < static_cast<uint64_t>(cfg_.election_tick)));
            if (in_lease && !m.transfer) return;
        }
        if (m.type == MessageType::kPreVote ||
            (m.type == MessageType::kPreVoteResponse && !m.reject)) {
            // A pre-vote carries the term the sender would use; it changes no one's term.
        } else {
            become_follower(m.term, from_leader ? m.from : kNoNode);
        }
    } else if (m.term < term_) {
        if (from_leader) {
            // Tell a stale leader about the newer term so it steps down.
            send(reply(m, MessageType::kAppendResponse));
        } else if (vote_request) {
            // Figure 2: reply false with our term. Ignoring a stale candidate can leave it
            // behind for good: a voter that lags our term and never hears from us (we
            // campaign in an older configuration without it) stays a term behind each time
            // it campaigns, and a configuration of the two never elects a leader.
            send(vote_rejection(m));
        }
        return;
    }

    if (vote_request) {
        handle_vote_request(m);
        return;
    }
    switch (role_) {
        case Role::kFollower:
            step_follower(m);
            break;
        case Role::kPreCandidate:
        case Role::kCandidate:
            step_candidate(m);
            break;
        case Role::kLeader:
            step_leader(m);
            break;
    }
}

// A voter that refuses us tells us its commit index (and that entry's term). Committed is
// committed whoever reports it: if our log has the same entry, everything up to it is
// committed here too. This matters when a configuration change removed or demoted the
// leader: a remaining voter that never heard the change committed still campaigns in the old
// configuration, needing the vote of the node that left, which refuses it when its own log
// is longer; learning the commit lets it apply the new configuration and win in it.
void Raft::learn_commit_from_rejection(const Message& m) {
    if (m.commit > log_.committed() && log_.match_term(m.commit, m.log_term)) {
        log_.commit_to(m.commit);
    }
}

void Raft::handle_vote_request(const Message& m) {
    bool pre = m.type == MessageType::kPreVote;
    // One vote per term (Figure 2); a pre-vote for a future term binds nothing.
    bool can_vote =
        vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
    if (!can_vote || !log_.is_up_to_date(m.index, m.log_term)) {
        send(vote_rejection(m));
        return;
    }
    if (!pre) {
        election_elapsed_ = 0;
        vote_ = m.from;
    }
    Message r = reply(m, pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse);
    r.term = m.term;  // a grant is in the candidate's term (for a pre-vote: the one it would take)
    send(std::move(r));
}

Message Raft::reply(const Message& m, MessageType type) const {
    Message r;
    r.type = type;
    r.to = m.from;
    r.term = term_;
    return r;
}

Message Raft::vote_rejection(const Message& m) const {
    Message r = reply(m, m.type == MessageType::kPreVote ? MessageType::kPreVoteResponse
                                                         : MessageType::kVoteResponse);
    r.reject = true;
    r.commit = log_.committed();
    r.log_term = log_.term_or_zero(r.commit);
    return r;
}

void Raft::handle_vote_response(const Message& m) {
    trk_.record_vote(m.from, !m.reject);
    switch (trk_.tally()) {
        case VoteResult::kWon:
            if (role_ == Role::kPreCandidate) {
                start_campaign(CampaignKind::kElection);
            } else {
                become_leader();
            }
            break;
        case VoteResult::kLost:
            become_follower(term_, kNoNode);
            break;
        case VoteResult::kPending:
            break;
    }
}

void Raft::step_follower(const Message& m) {
    switch (m.type) {
        case MessageType::kAppend:
            election_elapsed_ = 0;
            lead_ = m.from;
            handle_append(m);
            break;
        case MessageType::kHeartbeat:
            election_elapsed_ = 0;
            lead_ = m.from;
            handle_heartbeat(m);
            break;
        case MessageType::kSnapshot:
            election_elapsed_ = 0;
            lead_ = m.from;
            handle_snapshot(m);
            break;
        case MessageType::kTimeoutNow:
            hup(CampaignKind::kTransfer);
            break;
        case MessageType::kReadIndexResponse:
            if (!m.reject) read_states_.push_back({m.index, m.context});
            break;
        case MessageType::kReadIndex: {
            Message r = reply(m, MessageType::kReadIndexResponse);
            r.context = m.context;
            r.reject = true;
            send(std::move(r));
            break;
        }
        default:
            break;  // late answers to a campaign or leadership we no longer hold
    }
}

void Raft::step_candidate(const Message& m) {
    switch (m.type) {
        case MessageType::kAppend:
        case MessageType::kHeartbeat:
        case MessageType::kSnapshot:
            // Someone won this term (thesis 3.4).
            become_follower(term_, m.from);
            step_follower(m);
            break;
        case MessageType::kPreVoteResponse:
            if (role_ == Role::kPreCandidate) handle_vote_response(m);
            break;
        case MessageType::kVoteResponse:
            if (role_ == Role::kCandidate) handle_vote_response(m);
            break;
        case MessageType::kReadIndex:
            step_follower(m);
            break;
        default:
            break;
    }
}

void Raft::step_leader(const Message& m) {
    if (m.type == MessageType::kReadIndex) {
        handle_read_request(m.from, m.context, m.lease);
        return;
    }
    Progress* pr = trk_.find(m.from);
    if (pr == nullptr || m.from == id_) return;  // not a member (any more)
    switch (m.type) {
        case MessageType::kAppendResponse:
            handle_append_response(m, *pr);
            break;
        case MessageType::kHeartbeatResponse:
            handle_heartbeat_response(m, *pr);
            break;
        case MessageType::kSnapshotResponse:
            handle_snapshot_response(m, *pr);
            break;
        default:
            break;
    }
}

}  // namespace raftd::raft
