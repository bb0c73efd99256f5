#include "raft/testing/cluster.h"

namespace raftd::raft::testing {

namespace {
std::string join_entries(const std::vector<Entry>& ents) {
    std::string s;
    for (size_t i = 0; i < ents.size(); ++i) {
        if (i) s += ", ";
        s += describe(ents[i]);
    }
    return s;
}
}  // namespace

std::string describe_ready(NodeId id, const Ready& rd) {
    std::string s = "> " + std::to_string(id) + " handling Ready";
    if (rd.soft_state) {
        s += "\n  state: " + std::string(role_name(rd.soft_state->role)) +
             " leader=" + std::to_string(rd.soft_state->leader);
    }
    if (rd.hard_state) {
        s += "\n  hard state: term=" + std::to_string(rd.hard_state->term) +
             " vote=" + std::to_string(rd.hard_state->vote) +
             " commit=" + std::to_string(rd.hard_state->commit);
    }
    for (const SnapshotChunk& c : rd.snapshot_chunks) {
        s += "\n  stage snapshot chunk: " + std::to_string(c.meta.term) + "/" +
             std::to_string(c.meta.index) + " offset=" + std::to_string(c.offset) +
             " bytes=" + std::to_string(c.data.size()) + (c.done ? " done" : "");
    }
    if (rd.snapshot) {
        s += "\n  install snapshot: " + std::to_string(rd.snapshot->term) + "/" +
             std::to_string(rd.snapshot->index) + " " + describe(rd.snapshot->conf);
    }
    if (!rd.entries.empty()) s += "\n  append: " + join_entries(rd.entries);
    for (const Message& m : rd.messages)
        s += "\n  send: " + describe(m);
    for (const Message& m : rd.persisted_messages)
        s += "\n  send after persist: " + describe(m);
    if (!rd.committed_entries.empty()) s += "\n  apply: " + join_entries(rd.committed_entries);
    for (const ReadState& r : rd.read_states) {
        s += "\n  read state: index=" + std::to_string(r.index) + " ctx=\"" + r.context + "\"";
    }
    return s;
}

std::string describe_status(const Node& n) {
    NodeStatus st = n.status();
    std::string s =
        std::to_string(st.id) + ": " + std::string(role_name(st.soft.role)) +
        " term=" + std::to_string(st.hard.term) + " vote=" + std::to_string(st.hard.vote) +
        " leader=" + std::to_string(st.soft.leader) + " commit=" + std::to_string(st.hard.commit) +
        " applied=" + std::to_string(st.applied) + " log=" + std::to_string(st.first_index) + ".." +
        std::to_string(st.last_index) + " " + describe(st.conf);
    if (st.lead_transferee != kNoNode)
        s += " transferring-to=" + std::to_string(st.lead_transferee);
    for (const auto& [id, p] : st.progress) {
        s += "\n   " + std::to_string(id) + ": " + std::string(progress_state_name(p.state)) +
             " match=" + std::to_string(p.match) + " next=" + std::to_string(p.next);
        if (p.is_learner) s += " learner";
        if (p.inflight) s += " inflight=" + std::to_string(p.inflight);
    }
    return s;
}

Cluster::Cluster(const Config& base) : base_(base) {}

Status Cluster::bootstrap(const std::vector<NodeId>& voters, const std::vector<NodeId>& others) {
    std::vector<Member> members;
    for (NodeId id : voters)
        members.push_back({id, "n" + std::to_string(id) + ":7000"});
    for (NodeId id : voters) {
        peers_[id] = std::make_unique<Peer>(id, base_);
        peers_[id]->bootstrap(members);
        if (Status st = peers_[id]->start(); !st) return st;
        // Apply the bootstrap entry so the configuration is in force.
        std::vector<Message> out;
        while (peers_[id]->take_ready(out)) {
            if (Status st = peers_[id]->persist(out); !st) return st;
        }
    }
    for (NodeId id : others) {
        if (Status st = add_empty(id); !st) return st;
    }
    return Status::ok();
}

Status Cluster::add_empty(NodeId id) {
    peers_[id] = std::make_unique<Peer>(id, base_);
    return peers_[id]->start();
}

std::vector<NodeId> Cluster::ids() const {
    std::vector<NodeId> v;
    for (const auto& [id, p] : peers_)
        v.push_back(id);
    return v;
}

bool Cluster::link_ok(NodeId from, NodeId to) const {
    if (cuts_.count({from, to})) return false;
    if (groups_.empty()) return true;
    for (const auto& g : groups_) {
        if (g.count(from)) return g.count(to) != 0;
    }
    return false;  // not in any group: isolated
}

void Cluster::send(const std::vector<Message>& msgs) {
    for (const Message& m : msgs) {
        if (!link_ok(m.from, m.to)) {
            emit("  dropped: " + describe(m));
            continue;
        }
        queue_.push_back(m);
    }
}

void Cluster::partition(const std::vector<std::set<NodeId>>& groups) {
    groups_ = groups;
}

void Cluster::isolate(NodeId id) {
    std::set<NodeId> rest;
    for (const auto& [pid, p] : peers_) {
        if (pid != id) rest.insert(pid);
    }
    groups_ = {{id}, rest};
}

void Cluster::heal() {
    groups_.clear();
    cuts_.clear();
}

size_t Cluster::drop_to(NodeId id) {
    size_t n = 0;
    for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->to == id) {
            emit("  dropped: " + describe(*it));
            it = queue_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

bool Cluster::process_ready(NodeId id) {
    Peer& p = peer(id);
    std::vector<Message> out;
    if (!p.take_ready(out)) return false;
    emit(describe_ready(id, *p.pending()));
    Status st = p.persist(out);
    if (!st) emit("  persist failed: " + st.to_string());
    send(out);
    return true;
}

size_t Cluster::deliver_to(NodeId id, size_t max) {
    std::vector<Message> batch;
    for (auto it = queue_.begin(); it != queue_.end() && batch.size() < max;) {
        if (it->to == id) {
            batch.push_back(std::move(*it));
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    if (batch.empty()) return 0;
    Peer& p = peer(id);
    emit("> " + std::to_string(id) + " receiving messages");
    for (const Message& m : batch) {
        if (!p.up()) {
            emit("  " + describe(m) + " (dropped: node down)");
            continue;
        }
        emit("  " + describe(m));
        Status st = p.node().step(m);
        if (!st) emit("  step refused: " + st.to_string());
    }
    return batch.size();
}

void Cluster::stabilize(size_t max_rounds) {
    for (size_t round = 0; round < max_rounds; ++round) {
        bool moved = false;
        for (auto& [id, p] : peers_) {
            while (p->up() && process_ready(id))
                moved = true;
        }
        for (auto& [id, p] : peers_) {
            if (deliver_to(id) > 0) moved = true;
        }
        if (!moved) return;
    }
}

void Cluster::tick(NodeId id, int n) {
    for (int i = 0; i < n; ++i) {
        if (peer(id).up()) peer(id).node().tick();
    }
}

void Cluster::tick_all(int rounds) {
    for (int i = 0; i < rounds; ++i) {
        for (NodeId id : ids())
            tick(id);
        stabilize();
    }
}

void Cluster::crash(NodeId id) {
    peer(id).crash();
}

Status Cluster::restart(NodeId id) {
    return peer(id).start();
}

NodeId Cluster::leader() const {
    return highest_term_leader(peers_);
}

Status Cluster::elect(NodeId id) {
    if (Status st = peer(id).node().campaign(); !st) return st;
    stabilize();
    if (peer(id).node().role() != Role::kLeader) return Status::aborted("election lost");
    return Status::ok();
}

}  // namespace raftd::raft::testing
