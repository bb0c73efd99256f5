// Log replication: the leader's AppendEntries, heartbeats and InstallSnapshot chunks, the
// follower's answers, and the commit rule (thesis 3.5-3.6, 5.3, 10.2).
#include <algorithm>

#include "raft/raft.h"

namespace raftd::raft {

bool Raft::send_append(NodeId to, bool send_if_empty) {
    Progress* pr = trk_.find(to);
    if (pr == nullptr || to == id_) return false;
    if (pr->state == ProgressState::kSnapshot) return send_snapshot_chunk(to, *pr);
    if (pr->is_paused()) return false;
    pr->next = std::min(pr->next, log_.last_index() + 1);
    Index prev = pr->next - 1;
    auto prev_term = log_.term(prev);
    auto ents = log_.slice(pr->next, log_.last_index() + 1, cfg_.max_size_per_msg);
    if (!prev_term || !ents) {
        // The follower needs entries we compacted away: it gets the snapshot instead.
        bool compacted = (!prev_term && prev_term.status().code() == Code::kCompacted) ||
                         (!ents && ents.status().code() == Code::kCompacted);
        return compacted && start_snapshot(to, *pr);
    }
    if (ents->empty() && !send_if_empty) return false;
    Message m;
    m.type = MessageType::kAppend;
    m.to = to;
    m.term = term_;
    m.index = prev;
    m.log_term = *prev_term;
    m.commit = log_.committed();
    m.quiet = cfg_.quiet_commit_notices && ents->empty() &&
              pr->state == ProgressState::kReplicate && pr->match == prev;
    uint64_t bytes = 0;
    for (const Entry& e : *ents)
        bytes += e.byte_size();
    Index last = ents->empty() ? prev : ents->back().index;
    size_t count = ents->size();
    m.entries = std::move(ents).value();
    pr->sent_entries(last, count, bytes);
    send(std::move(m));
    return true;
}

void Raft::bcast_append() {
    bcast_pending_ = false;
    for (auto& [id, pr] : trk_.progress()) {
        if (id != id_) send_append(id);
    }
}

void Raft::flush_bcast() {
    if (bcast_pending()) bcast_append();
    bcast_pending_ = false;
}

uint64_t Raft::bcast_heartbeat() {
    ++round_;
    round_ticks_.push_back({round_, now_});
    // Rounds older than two election timeouts can no longer extend a lease; forget them.
    while (!round_ticks_.empty() && round_ticks_.front().second + 2 * cfg_.election_tick < now_) {
        round_ticks_.pop_front();
    }
    for (auto& [id, pr] : trk_.progress()) {
        if (id == id_) {
            pr.read_round = round_;
            pr.lease_tick = now_;
            continue;
        }
        Message m;
        m.type = MessageType::kHeartbeat;
        m.to = id;
        m.term = term_;
        // Never more than the follower is known to hold: it may not have the rest yet.
        m.commit = std::min(pr.match, log_.committed());
        m.round = round_;
        send(std::move(m));
    }
    return round_;
}

bool Raft::start_snapshot(NodeId to, Progress& pr) {
    SnapshotMeta meta = storage_.snapshot_meta();
    if (meta.index == 0) return false;
    pr.become_snapshot(meta.index);
    return send_snapshot_chunk(to, pr);
}

bool Raft::send_snapshot_chunk(NodeId to, Progress& pr) {
    if (pr.state != ProgressState::kSnapshot || pr.chunk_in_flight) return false;
    SnapshotMeta meta = storage_.snapshot_meta();
    if (meta.index == 0) return false;
    if (meta.index != pr.pending_snapshot) pr.become_snapshot(meta.index);  // a newer one exists
    SnapshotBytes bytes;
    if (snapshots_ != nullptr) {
        auto r = snapshots_->read_snapshot(meta.index, pr.snapshot_offset,
                                           cfg_.max_snapshot_chunk_bytes);
        if (!r) {
            // Replaced under us or the follower asked for a bad offset: start over next time.
            pr.snapshot_offset = 0;
            return false;
        }
        bytes = std::move(r).value();
    } else {
        pr.snapshot_offset = 0;  // metadata-only snapshots: one empty chunk
        bytes.done = true;
    }
    Message m;
    m.type = MessageType::kSnapshot;
    m.to = to;
    m.term = term_;
    m.snapshot = meta;
    m.offset = pr.snapshot_offset;
    m.data = std::move(bytes.data);
    m.done = bytes.done;
    pr.chunk_in_flight = true;
    send(std::move(m));
    return true;
}

bool Raft::committed_in_term() const {
    return log_.term_or_zero(log_.committed()) == term_;
}

bool Raft::maybe_commit() {
    if (trk_.voters().empty()) return false;
    Index idx = trk_.committed();
    // Figure 8: only an entry of the current term is committed by counting replicas; earlier
    // ones follow it.
    if (idx <= log_.committed() || idx > log_.last_index() || log_.term_or_zero(idx) != term_) {
        return false;
    }
    bool first_in_term = !committed_in_term();
    log_.commit_to(idx);
    if (first_in_term) release_reads_waiting_commit();
    return true;
}

void Raft::update_self_progress() {
    Progress* self = trk_.find(id_);
    if (self == nullptr) return;
    // The leader's own entries count toward a quorum only once durable (thesis 10.2.1).
    if (self->maybe_update(log_.durable_last()) && maybe_commit()) request_bcast();
}

void Raft::handle_append(const Message& m) {
    Message r = reply(m, MessageType::kAppendResponse);
    if (m.index < log_.committed()) {
        r.index = log_.committed();  // all of that is ours already
        send(std::move(r));
        return;
    }
    if (auto last_new = log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
        if (m.quiet && m.entries.empty()) return;  // a commit notice: nothing to tell
        r.index = *last_new;
        send(std::move(r));
        return;
    }
    // Figure 2: reject when the previous entry does not match, with a hint (thesis 5.3) of
    // the last index whose term could match so the leader skips a whole term per round trip.
    auto [hint, hint_term] =
        log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
    r.reject = true;
    r.index = m.index;
    r.reject_hint = hint;
    r.log_term = hint_term;
    send(std::move(r));
}

void Raft::handle_heartbeat(const Message& m) {
    log_.commit_to(std::min(m.commit, log_.last_index()));
    Message r = reply(m, MessageType::kHeartbeatResponse);
    r.round = m.round;
    send(std::move(r));
}

void Raft::handle_snapshot(const Message& m) {
    const SnapshotMeta& meta = m.snapshot;
    auto ack = [&](Index index) {
        Message r = reply(m, MessageType::kAppendResponse);
        r.index = index;
        send(std::move(r));
    };
    auto answer = [&](uint64_t offset, bool reject) {
        Message r = reply(m, MessageType::kSnapshotResponse);
        r.index = meta.index;
        r.offset = offset;
        r.reject = reject;
        send(std::move(r));
    };
    if (meta.index <= log_.committed()) {
        incoming_.reset();
        ack(log_.committed());  // stale: we already have all of it
        return;
    }
    if (log_.has_pending_snapshot()) {
        // A received snapshot waits to be installed: chunks of a newer one would land in the
        // same Ready and replace the staged bytes before the install reads them. Dropped;
        // the leader sends again after the next heartbeat answer.
        return;
    }
    if (m.offset == 0) {
        if (log_.match_term(meta.index, meta.term)) {
            // Our log already contains the snapshot's last entry, so everything before it
            // matches too: just commit up to there.
            incoming_.reset();
            log_.commit_to(meta.index);
            ack(meta.index);
            return;
        }
        incoming_ = Incoming{meta, 0};
    }
    if (!incoming_ || incoming_->meta != meta || m.offset > incoming_->next_offset) {
        answer(incoming_ && incoming_->meta == meta ? incoming_->next_offset : 0, true);
        return;
    }
    if (m.offset < incoming_->next_offset) {
        answer(incoming_->next_offset, false);  // a duplicate
        return;
    }
    incoming_->next_offset += m.data.size();
    chunks_.push_back({meta, m.offset, m.data, m.done});
    if (!m.done) {
        answer(incoming_->next_offset, false);
        return;
    }
    incoming_.reset();
    log_.restore(meta);
    conf_index_ = meta.index;
    conf_history_.clear();
    conf_history_.push_back({meta.index, meta.conf});
    trk_.set_conf(meta.conf, log_.last_index() + 1);
    ack(meta.index);
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
    pr.recent_active = true;
    if (m.index > log_.last_index()) return;  // acknowledges entries we never sent
    if (m.reject) {
        Index hint = m.reject_hint;
        if (m.log_term > 0) hint = log_.find_conflict_by_term(m.reject_hint, m.log_term).first;
        if (pr.maybe_decrease_to(m.index, hint)) {
            if (pr.state == ProgressState::kReplicate) pr.become_probe();
            send_append(m.from);
        }
        return;
    }
    bool was_paused = pr.is_paused();
    if (!pr.maybe_update(m.index)) return;
    switch (pr.state) {
        case ProgressState::kProbe:
            pr.become_replicate();
            break;
        case ProgressState::kSnapshot:
            if (pr.match + 1 >= log_.first_index()) {
                pr.become_probe();
                pr.become_replicate();
            }
            break;
        case ProgressState::kReplicate:
            pr.inflights.free_le(m.index);
            break;
    }
    if (maybe_commit()) {
        request_bcast();
    } else if (was_paused) {
        send_append(m.from);
    }
    // Fill the window with whatever is left.
    while (send_append(m.from, false)) {
    }
    if (m.from == lead_transferee_ && pr.match == log_.last_index()) send_timeout_now(m.from);
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
    pr.recent_active = true;
    pr.probe_sent = false;
    if (pr.state == ProgressState::kSnapshot) {
        pr.chunk_in_flight = false;  // the chunk or its answer may be lost: send it again
        send_snapshot_chunk(m.from, pr);
    } else if (pr.match < log_.last_index()) {
        // The follower is alive but the window may be full of appends that were lost: free a
        // slot so an append goes out; if the follower misses entries it rejects it and the
        // leader probes back from its match index.
        if (pr.state == ProgressState::kReplicate && pr.inflights.full()) {
            pr.inflights.free_first_one();
        }
        send_append(m.from);
    }
    if (m.round > pr.read_round && m.round <= round_) {
        pr.read_round = m.round;
        pr.lease_tick = tick_of_round(m.round);
        release_reads();
    }
}

void Raft::handle_snapshot_response(const Message& m, Progress& pr) {
    pr.recent_active = true;
    if (pr.state != ProgressState::kSnapshot || m.index != pr.pending_snapshot) return;
    pr.chunk_in_flight = false;
    pr.snapshot_offset = m.offset;
    send_snapshot_chunk(m.from, pr);
}

}  // namespace raftd::raft
