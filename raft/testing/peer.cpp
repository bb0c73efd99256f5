#include "raft/testing/peer.h"

#include <sstream>

namespace raftd::raft::testing {

Peer::Peer(NodeId id, const Config& cfg) : cfg_(cfg) {
    cfg_.id = id;
}

void Peer::bootstrap(const std::vector<Member>& voters) {
    (void)storage_.append({bootstrap_entry(voters)});
    storage_.set_hard_state(HardState{1, kNoNode, 1});
}

Status Peer::start() {
    app_ = decode_app(storage_.snapshot_data());
    Config cfg = cfg_;
    cfg.applied = storage_.snapshot_meta().index;
    auto n = Node::create(cfg, storage_, &storage_);
    if (!n) return n.status();
    node_ = std::move(n).value();
    pending_.reset();
    writes_.clear();
    staging_.clear();
    reads_.clear();
    return Status::ok();
}

void Peer::crash() {
    node_.reset();
    pending_.reset();
    writes_.clear();
    staging_.clear();
    reads_.clear();
    app_.clear();
}

bool Peer::take_ready(std::vector<Message>& out) {
    if (!node_ || pending_ || !node_->has_ready()) return false;
    Ready rd = node_->ready();
    taken_ = rd;
    for (const Message& m : rd.messages)
        out.push_back(m);
    const HardState& written = storage_.hard_state();
    const bool async =
        async_leader && node_->role() == Role::kLeader && !rd.entries.empty() && !rd.snapshot &&
        rd.snapshot_chunks.empty() && rd.persisted_messages.empty() &&
        (!rd.hard_state ||
         (rd.hard_state->term == written.term && rd.hard_state->vote == written.vote));
    if (!async) {
        pending_ = std::move(rd);
        return true;
    }
    for (const Entry& e : rd.committed_entries)
        apply(e);
    for (ReadState& rs : rd.read_states)
        reads_.push_back(std::move(rs));
    std::vector<Entry> entries = std::move(rd.entries);
    EntryId last = node_->advance_except_entries();
    // Only the commit index changed; it is written with the entries (after them, as the
    // daemon does): written now, it could point past what a crash leaves on disk.
    writes_.push_back({std::move(entries), last, rd.hard_state});
    return true;
}

Status Peer::complete_write() {
    if (writes_.empty()) return Status::ok();
    Write w = std::move(writes_.front());
    writes_.pop_front();
    if (Status st = storage_.append(w.entries); !st) return st;
    if (w.hard_state) storage_.set_hard_state(*w.hard_state);
    if (node_) node_->entries_persisted(w.last);
    return Status::ok();
}

Status Peer::persist(std::vector<Message>& out) {
    if (!pending_) return Status::ok();
    while (!writes_.empty()) {
        if (Status st = complete_write(); !st) return st;
    }
    Ready rd = std::move(*pending_);
    pending_.reset();
    for (const SnapshotChunk& c : rd.snapshot_chunks) {
        if (c.offset == 0) staging_.clear();
        staging_ += c.data;
    }
    if (rd.snapshot) {
        if (Status st = storage_.apply_snapshot(*rd.snapshot, staging_); !st) return st;
        app_ = decode_app(staging_);
        staging_.clear();
        if (on_restore) on_restore(id(), *rd.snapshot, app_);
    }
    if (Status st = storage_.append(rd.entries); !st) return st;
    if (rd.hard_state) storage_.set_hard_state(*rd.hard_state);
    for (const Message& m : rd.persisted_messages)
        out.push_back(m);
    for (const Entry& e : rd.committed_entries)
        apply(e);
    for (ReadState& rs : rd.read_states)
        reads_.push_back(std::move(rs));
    node_->advance();
    return Status::ok();
}

void Peer::persist_partially_then_crash() {
    if (pending_) {
        for (const SnapshotChunk& c : pending_->snapshot_chunks) {
            if (c.offset == 0) staging_.clear();
            staging_ += c.data;
        }
        if (pending_->snapshot) (void)storage_.apply_snapshot(*pending_->snapshot, staging_);
        (void)storage_.append(pending_->entries);
    }
    crash();
}

void Peer::apply(const Entry& e) {
    // Delivery must be gap-free; a gap would be a bug the checks below report.
    app_.push_back(e);
    if (on_apply) on_apply(id(), e);
}

Status Peer::compact(Index i) {
    if (!node_) return Status::unavailable("node is down");
    if (i > applied_index()) return Status::invalid_argument("not applied yet");
    auto meta = node_->snapshot_meta(i);
    if (!meta) return meta.status();
    std::vector<Entry> prefix;
    for (const Entry& e : app_) {
        if (e.index <= i) prefix.push_back(e);
    }
    if (Status st = storage_.create_snapshot(*meta, encode_app(prefix)); !st) return st;
    return storage_.compact(i);
}

std::string Peer::encode_app(const std::vector<Entry>& ents) {
    std::string out;
    for (const Entry& e : ents) {
        out += std::to_string(e.index) + " " + std::to_string(e.term) + " " +
               std::to_string(static_cast<int>(e.type)) + " " + std::to_string(e.data.size()) + " ";
        out += e.data.view();
        out += "\n";
    }
    return out;
}

std::vector<Entry> Peer::decode_app(const std::string& data) {
    std::vector<Entry> out;
    size_t pos = 0;
    while (pos < data.size()) {
        std::istringstream in(data.substr(pos, 100));
        Entry e;
        int type = 0;
        size_t len = 0;
        in >> e.index >> e.term >> type >> len;
        e.type = static_cast<EntryType>(type);
        // Header is four numbers and four spaces; find where the payload starts.
        size_t start = pos;
        for (int spaces = 0; spaces < 4; ++start) {
            if (data[start] == ' ') ++spaces;
        }
        e.data = Payload(data.substr(start, len));
        out.push_back(std::move(e));
        pos = start + len + 1;
    }
    return out;
}

}  // namespace raftd::raft::testing
