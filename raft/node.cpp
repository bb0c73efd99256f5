#include "raft/node.h"

#include "raft/confchange_codec.h"

namespace raftd::raft {

Result<std::unique_ptr<Node>> Node::create(const Config& cfg, const Storage& storage,
                                           const SnapshotSource* snapshots) {
    auto r = Raft::create(cfg, storage, snapshots);
    if (!r) return r.status();
    return std::unique_ptr<Node>(new Node(std::move(r).value()));
}

Node::Node(std::unique_ptr<Raft> r) : raft_(std::move(r)) {
    prev_soft_ = {raft_->leader(), raft_->role()};
}

void Node::tick() {
    raft_->tick();
}

Status validate_message(const Message& m, NodeId self) {
    auto bad = [](const std::string& why) { return Status::invalid_argument("message: " + why); };
    if (static_cast<uint8_t>(m.type) < 1 || static_cast<uint8_t>(m.type) > kMaxMessageType) {
        return bad("unknown type " + std::to_string(static_cast<int>(m.type)));
    }
    if (m.to != self)
        return bad("addressed to " + std::to_string(m.to) + ", not " + std::to_string(self));
    if (m.from == kNoNode || m.from == self) return bad("bad sender " + std::to_string(m.from));
    if (m.term == 0) return bad("term 0");
    if (m.type == MessageType::kAppend) {
        Term prev_term = m.log_term;
        for (size_t k = 0; k < m.entries.size(); ++k) {
            const Entry& e = m.entries[k];
            if (e.index != m.index + 1 + k)
                return bad("entries not contiguous after the previous index");
            if (e.term < prev_term || e.term > m.term) return bad("entry terms out of order");
            uint8_t t = static_cast<uint8_t>(e.type);
            if (t < 1 || t > 3) return bad("unknown entry type");
            prev_term = e.term;
        }
        if (m.log_term > m.term) return bad("previous term beyond the message term");
    }
    if (m.type == MessageType::kSnapshot) {
        if (m.snapshot.index == 0 || m.snapshot.term == 0 || m.snapshot.term > m.term) {
            return bad("bad snapshot metadata");
        }
    }
    return Status::ok();
}

Status Node::step(const Message& m) {
    if (Status st = validate_message(m, raft_->id()); !st) return st;
    raft_->step(m);
    return Status::ok();
}

Result<EntryId> Node::propose(Payload data) {
    return raft_->propose(std::move(data));
}
Result<EntryId> Node::propose_conf_change(const ConfChange& cc) {
    return raft_->propose_conf_change(cc);
}
Status Node::read_index(std::string context, bool allow_lease) {
    return raft_->read_index(std::move(context), allow_lease);
}
Status Node::transfer_leader(NodeId to) {
    return raft_->transfer_leader(to);
}
Status Node::campaign() {
    return raft_->campaign();
}

bool Node::has_ready() const {
    if (outstanding_) return false;
    const Raft& r = *raft_;
    const RaftLog& log = r.log();
    return SoftState{r.leader(), r.role()} != prev_soft_ ||
           r.hard_state() != r.durable_hard_state() || log.has_next_unstable() ||
           log.next_snapshot() || log.has_next_committed() || !r.outbox().empty() ||
           !r.read_states().empty() || !r.snapshot_chunks().empty() || r.bcast_pending();
}

Ready Node::ready() {
    Ready rd;
    Raft& r = *raft_;
    r.flush_bcast();
    RaftLog& log = r.log();
    Outstanding out;

    SoftState ss{r.leader(), r.role()};
    if (ss != prev_soft_) {
        rd.soft_state = ss;
        prev_soft_ = ss;
    }
    HardState hs = r.hard_state();
    if (hs != r.durable_hard_state()) {
        rd.hard_state = hs;
        out.hard_state = hs;
    }
    rd.snapshot = log.next_snapshot();
    out.snapshot = rd.snapshot;
    rd.entries = log.next_unstable();
    if (!rd.entries.empty())
        out.last_entry = EntryId{rd.entries.back().index, rd.entries.back().term};
    log.mark_handed_out(rd.entries.empty() ? 0 : rd.entries.back().index, rd.snapshot.has_value());
    rd.snapshot_chunks = std::move(r.snapshot_chunks());
    r.snapshot_chunks().clear();

    rd.committed_entries = log.next_committed(r.config().max_committed_bytes_per_ready);
    for (const Entry& e : rd.committed_entries) {
        if (e.type == EntryType::kConfig) out.config_entries.push_back(e);
        // Every entry's bytes were counted when proposed (config entries too), so every
        // entry's bytes are released when applied; counting only data entries leaked the
        // budget by each config entry until the leader refused everything.
        out.data_bytes += e.data.size();
    }
    if (!rd.committed_entries.empty()) out.last_committed = rd.committed_entries.back().index;
    rd.read_states = std::move(r.read_states());
    r.read_states().clear();

    bool persist = rd.must_persist();
    for (auto& o : r.outbox()) {
        (persist && o.after_persist ? rd.persisted_messages : rd.messages)
            .push_back(std::move(o.msg));
    }
    r.outbox().clear();
    outstanding_ = std::move(out);
    return rd;
}

void Node::advance() {
    if (!outstanding_) return;
    Outstanding out = std::move(*outstanding_);
    outstanding_.reset();
    raft_->on_persisted(out.hard_state, out.snapshot, out.last_entry);
    if (out.last_committed != 0 || !out.config_entries.empty()) {
        raft_->on_applied(out.config_entries, out.last_committed, out.data_bytes);
    }
}

EntryId Node::advance_except_entries() {
    if (!outstanding_) return {};
    EntryId last = outstanding_->last_entry.value_or(EntryId{});
    outstanding_->last_entry.reset();
    advance();
    return last;
}

void Node::entries_persisted(EntryId last) {
    if (last.index == 0) return;
    raft_->on_persisted(std::nullopt, std::nullopt, last);
}

Result<SnapshotMeta> Node::snapshot_meta(Index i) const {
    // Entries of the outstanding Ready are committed and durable (raft hands out no others),
    // so the application may have applied them already: the daemon delivers them before
    // the Ready's own write finishes and advance() runs.
    if (outstanding_)
        return raft_->snapshot_meta_at(i, outstanding_->last_committed,
                                       outstanding_->config_entries);
    return raft_->snapshot_meta_at(i);
}

NodeStatus Node::status() const {
    const Raft& r = *raft_;
    NodeStatus s;
    s.id = r.id();
    s.hard = r.hard_state();
    s.soft = {r.leader(), r.role()};
    s.applied = r.log().applied();
    s.first_index = r.log().first_index();
    s.last_index = r.log().last_index();
    s.lead_transferee = r.lead_transferee();
    s.conf = r.tracker().conf();
    if (r.role() == Role::kLeader) {
        for (const auto& [id, pr] : r.tracker().progress()) {
            s.progress[id] = {pr.match,      pr.next,          pr.state,
                              pr.is_learner, pr.recent_active, pr.inflights.count()};
        }
    }
    return s;
}

Entry bootstrap_entry(const std::vector<Member>& voters) {
    ConfChange cc;
    for (const Member& m : voters)
        cc.changes.push_back({ConfChangeType::kAddNode, m.id, m.addr});
    Entry e;
    e.index = 1;
    e.term = 1;
    e.type = EntryType::kConfig;
    e.data = Payload(encode_conf_change(cc));
    return e;
}

}  // namespace raftd::raft
