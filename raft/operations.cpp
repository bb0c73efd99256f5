// The operations the caller asks of Raft besides step() and tick(): proposals, membership
// changes, ReadIndex and lease reads, leader transfer, campaign; and the caller's reports of
// what became durable or applied (which is where configuration changes take effect).
#include <algorithm>

#include "raft/confchange_codec.h"
#include "raft/raft.h"

namespace raftd::raft {

namespace {
Status not_leader_status(NodeId lead) {
    if (lead == kNoNode) return Status::not_leader("not the leader; no leader known");
    return Status::not_leader("not the leader; leader is " + std::to_string(lead));
}
}  // namespace

EntryId Raft::append_entry(EntryType type, Payload data) {
    Entry e;
    e.index = log_.last_index() + 1;
    e.term = term_;
    e.type = type;
    e.data = std::move(data);
    uncommitted_bytes_ += e.data.size();
    EntryId id{e.index, e.term};
    log_.append({std::move(e)});
    request_bcast();
    return id;
}

Result<EntryId> Raft::propose(Payload data) {
    if (role_ != Role::kLeader) return not_leader_status(lead_);
    if (lead_transferee_ != kNoNode) {
        return Status::busy("leadership transfer to " + std::to_string(lead_transferee_) +
                            " in progress");
    }
    if (cfg_.max_uncommitted_bytes != 0 && uncommitted_bytes_ > 0 &&
        uncommitted_bytes_ + data.size() > cfg_.max_uncommitted_bytes) {
        return Status::busy("too many uncommitted bytes (" + std::to_string(uncommitted_bytes_) +
                            " of at most " + std::to_string(cfg_.max_uncommitted_bytes) + ")");
    }
    return append_entry(EntryType::kData, std::move(data));
}

Result<EntryId> Raft::propose_conf_change(const ConfChange& cc) {
    if (role_ != Role::kLeader) return not_leader_status(lead_);
    if (lead_transferee_ != kNoNode) {
        return Status::busy("leadership transfer to " + std::to_string(lead_transferee_) +
                            " in progress");
    }
    // One change at a time, validated against the configuration it will be applied to.
    if (pending_conf_index_ > log_.applied()) {
        return Status::busy("a configuration change is pending (index " +
                            std::to_string(pending_conf_index_) + " not applied yet)");
    }
    auto next = apply_conf_change(trk_.conf(), cc);
    if (!next) return next.status();
    EntryId id = append_entry(EntryType::kConfig, Payload(encode_conf_change(cc)));
    pending_conf_index_ = id.index;
    return id;
}

Status Raft::read_index(std::string context, bool allow_lease) {
    if (role_ == Role::kLeader) {
        handle_read_request(id_, std::move(context), allow_lease);
        return Status::ok();
    }
    if (role_ == Role::kFollower && lead_ != kNoNode) {
        // Thesis 6.4: a follower asks the leader for the read index.
        Message m;
        m.type = MessageType::kReadIndex;
        m.to = lead_;
        m.term = term_;
        m.context = std::move(context);
        m.lease = allow_lease;
        send(std::move(m));
        return Status::ok();
    }
    return Status::unavailable("no leader known to serve the read");
}

void Raft::handle_read_request(NodeId from, std::string context, bool allow_lease) {
    // Thesis 6.4 step 1: until an entry of this term commits, our commit index may lag
    // entries a previous leader committed. This holds for a single voter too: it may have
    // become the only voter by a change a previous leader committed (with its acknowledgement)
    // together with later entries it was never told are committed.
    if (!committed_in_term()) {
        reads_waiting_commit_.push_back({from, std::move(context), allow_lease});
        return;
    }
    if (trk_.is_singleton() && trk_.is_voter(id_)) {
        deliver_read(from, log_.committed(), std::move(context));
        return;
    }
    if (allow_lease && lease_valid()) {
        deliver_read(from, log_.committed(), std::move(context));
        return;
    }
    // Step 2-3: the read is served once a quorum confirms we were still leader after it
    // arrived: any heartbeat round sent from now on proves that when acknowledged.
    Index index = log_.committed();
    uint64_t round = bcast_heartbeat();
    reads_.push_back({round, index, std::move(context), from});
    release_reads();  // a configuration of one voter per half may already be satisfied
}

void Raft::deliver_read(NodeId from, Index index, std::string context) {
    if (from == id_) {
        read_states_.push_back({index, std::move(context)});
        return;
    }
    Message m;
    m.type = MessageType::kReadIndexResponse;
    m.to = from;
    m.term = term_;
    m.index = index;
    m.context = std::move(context);
    send(std::move(m));
}

void Raft::release_reads() {
    if (reads_.empty()) return;
    uint64_t confirmed = trk_.quorum_value([this](NodeId id) -> uint64_t {
        const Progress* pr = trk_.find(id);
        return pr ? pr->read_round : 0;
    });
    while (!reads_.empty() && reads_.front().round <= confirmed) {
        PendingRead r = std::move(reads_.front());
        reads_.pop_front();
        deliver_read(r.from, r.index, std::move(r.context));
    }
}

void Raft::release_reads_waiting_commit() {
    auto waiting = std::move(reads_waiting_commit_);
    reads_waiting_commit_.clear();
    for (auto& w : waiting)
        handle_read_request(w.from, std::move(w.context), w.allow_lease);
}

uint64_t Raft::tick_of_round(uint64_t round) const {
    for (const auto& [r, tick] : round_ticks_) {
        if (r == round) return tick;
    }
    return 0;
}

// The leader holds a lease while a quorum acknowledged heartbeats sent within the last
// election_tick - 1 ticks: each of those followers refuses votes for election_tick ticks after
// hearing from us (check_quorum), and one tick is the margin for unaligned tick phases.
bool Raft::lease_valid() const {
    if (!cfg_.lease_read || lease_revoked_ || lead_transferee_ != kNoNode) return false;
    uint64_t since = trk_.quorum_value([this](NodeId id) -> uint64_t {
        if (id == id_) return now_;
        const Progress* pr = trk_.find(id);
        return pr && pr->read_round > 0 ? pr->lease_tick : 0;
    });
    return since > 0 && now_ + 1 < since + static_cast<uint64_t>(cfg_.election_tick);
}

Status Raft::transfer_leader(NodeId to) {
    if (role_ != Role::kLeader) return not_leader_status(lead_);
    if (to == id_)
        return Status::invalid_argument("node " + std::to_string(to) + " is already the leader");
    if (!trk_.is_voter(to)) {
        return Status::invalid_argument("node " + std::to_string(to) + " is not a voter");
    }
    if (lead_transferee_ == to) return Status::ok();
    lead_transferee_ = to;
    election_elapsed_ = 0;  // the transfer is abandoned after one election timeout
    Progress* pr = trk_.find(to);
    if (pr->match == log_.last_index()) {
        send_timeout_now(to);
    } else {
        send_append(to);
    }
    return Status::ok();
}

void Raft::send_timeout_now(NodeId to) {
    // The target's election bypasses every follower's lease, so ours is void from now on.
    lease_revoked_ = true;
    Message m;
    m.type = MessageType::kTimeoutNow;
    m.to = to;
    m.term = term_;
    send(std::move(m));
    // A leader outside the configuration is done: the target has its whole log.
    if (!trk_.is_voter(id_)) become_follower(term_, kNoNode);
}

Status Raft::campaign() {
    if (role_ == Role::kLeader) return Status::invalid_argument("already the leader");
    if (!promotable()) return Status::invalid_argument("not a voter; cannot campaign");
    hup(CampaignKind::kPreVote);
    return Status::ok();
}

void Raft::on_persisted(const std::optional<HardState>& hs, const std::optional<SnapshotMeta>& snap,
                        const std::optional<EntryId>& last_entry) {
    if (hs) durable_hs_ = *hs;
    if (snap) {
        log_.stable_snapshot_to(snap->index);
        if (log_.applied() < snap->index) log_.applied_to(snap->index);
    }
    if (last_entry) log_.stable_to(last_entry->index, last_entry->term);
    if (role_ == Role::kLeader) update_self_progress();
}

void Raft::on_applied(const std::vector<Entry>& config_entries, Index last_applied,
                      uint64_t data_bytes) {
    for (const Entry& e : config_entries)
        apply_conf_entry(e);
    if (last_applied > log_.applied()) log_.applied_to(last_applied);
    if (transfer_after_apply_ && role_ != Role::kLeader && !has_unapplied_conf()) {
        transfer_after_apply_ = false;
        hup(CampaignKind::kTransfer);
    }
    if (role_ == Role::kLeader) {
        uncommitted_bytes_ -= std::min(uncommitted_bytes_, data_bytes);
        maybe_auto_leave();
    }
}

void Raft::apply_conf_entry(const Entry& e) {
    if (e.index <= conf_index_) return;  // already part of a snapshot we installed
    auto cc = decode_conf_change(e.data.view());
    if (!cc) return;
    // An invalid change is refused the same way on every node, so configurations agree.
    auto next = apply_conf_change(trk_.conf(), *cc);
    if (!next) return;
    switch_conf(*next, e.index);
}

void Raft::switch_conf(const ConfState& cs, Index index) {
    conf_index_ = index;
    conf_history_.push_back({index, cs});
    trk_.set_conf(cs, log_.last_index() + 1);
    if (role_ != Role::kLeader) return;
    if (lead_transferee_ != kNoNode && !trk_.is_voter(lead_transferee_)) lead_transferee_ = kNoNode;
    if (Progress* self = trk_.find(id_)) {
        self->match = std::max(self->match, log_.durable_last());
    }
    maybe_commit();
    bcast_append();
    if (!trk_.is_voter(id_) && lead_transferee_ == kNoNode) {
        // Thesis 4.2.2: the change that removes (or demotes) the leader is committed, so the
        // new configuration decides from now on. The leader keeps leading it (its own entries
        // no longer count) only until a voter of the new configuration can take over: it
        // catches the most up-to-date one up with the transfer mechanism (refusing proposals
        // meanwhile), sends it TimeoutNow and steps down. Stepping down at once would be
        // wrong: followers that did not learn that the change committed still use the old
        // configuration, where this node's vote may be needed and a longer log of its own
        // makes it refuse them, so nobody could be elected.
        hand_off_leadership();
    }
}

void Raft::hand_off_leadership() {
    NodeId best = kNoNode;
    Index best_match = 0;
    for (const auto& [id, pr] : trk_.progress()) {
        if (id == id_ || !trk_.is_voter(id)) continue;
        if (best == kNoNode || pr.match > best_match) {
            best = id;
            best_match = pr.match;
        }
    }
    if (best == kNoNode) return;
    lead_transferee_ = best;
    election_elapsed_ = 0;
    if (best_match == log_.last_index()) {
        send_timeout_now(best);
    } else {
        send_append(best);
    }
}

void Raft::maybe_auto_leave() {
    const ConfState& cs = trk_.conf();
    if (!cs.joint() || !cs.auto_leave || pending_conf_index_ > log_.applied()) return;
    EntryId id = append_entry(EntryType::kConfig, Payload(encode_conf_change(ConfChange{})));
    pending_conf_index_ = id.index;
}

Result<SnapshotMeta> Raft::snapshot_meta_at(Index i, Index handed_out,
                                            const std::vector<Entry>& handed_out_conf) const {
    const Index applied = log_.applied();
    if (i > std::max(applied, handed_out)) {
        return Status::invalid_argument("index " + std::to_string(i) +
                                        " is not yet handed out as committed (applied " +
                                        std::to_string(applied) + ", handed out " +
                                        std::to_string(std::max(applied, handed_out)) + ")");
    }
    auto t = log_.term(i);
    if (!t) return t.status();
    const ConfState* conf = nullptr;
    for (const auto& [idx, cs] : conf_history_) {
        if (idx <= i) conf = &cs;
    }
    if (conf == nullptr)
        return Status::compacted("configuration at " + std::to_string(i) + " unknown");
    SnapshotMeta meta;
    meta.index = i;
    meta.term = *t;
    meta.conf = *conf;
    // Past `applied`, the configuration as of i is the applied one with the handed-out config
    // entries up to i applied exactly as on_applied() will apply them (an invalid change is
    // skipped there too). They are committed, so the result is final; raft's own
    // configuration and `applied` still move only at advance().
    if (i > applied) {
        for (const Entry& e : handed_out_conf) {
            if (e.index <= conf_index_ || e.index > i) continue;
            auto cc = decode_conf_change(e.data.view());
            if (!cc) continue;
            auto next = apply_conf_change(meta.conf, *cc);
            if (next) meta.conf = *next;
        }
    }
    return meta;
}

}  // namespace raftd::raft
