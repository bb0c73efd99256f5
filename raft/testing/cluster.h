// Cluster: a deterministic in-memory network of Peers for paper tests and scenario scripts.
// Messages wait in one FIFO queue until a test delivers them; partitions and one-way cuts
// drop them; everything that happens can be traced as text.
//
// Owns: the peers, the message queue and the link rules.
// Never: randomness or time of its own; the same calls always give the same trace.
// Thread rules: single-threaded test code.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/testing/peer.h"

namespace raftd::raft::testing {

std::string describe_ready(NodeId id, const Ready& rd);
std::string describe_status(const Node& n);

// The running leader with the highest term among `peers` (ids to replicas with up() and
// node()), or kNoNode. Stale leaders of older terms may still be up after a partition.
template <class Peers>
NodeId highest_term_leader(const Peers& peers) {
    NodeId best = kNoNode;
    Term best_term = 0;
    for (const auto& [id, p] : peers) {
        if (p->up() && p->node().role() == Role::kLeader && p->node().term() >= best_term) {
            best = id;
            best_term = p->node().term();
        }
    }
    return best;
}

class Cluster {
  public:
    explicit Cluster(const Config& base);

    Config& base() { return base_; }
    // Creates and starts peers: `voters` bootstrapped as the initial configuration,
    // `others` empty (to join later). Their first Readys are processed without tracing.
    Status bootstrap(const std::vector<NodeId>& voters, const std::vector<NodeId>& others = {});
    Status add_empty(NodeId id);
    Peer& peer(NodeId id) { return *peers_.at(id); }
    bool has(NodeId id) const { return peers_.count(id) != 0; }
    std::vector<NodeId> ids() const;

    // ---- network ----
    void send(const std::vector<Message>& msgs);
    std::deque<Message>& queue() { return queue_; }
    void partition(const std::vector<std::set<NodeId>>& groups);
    void isolate(NodeId id);
    void cut(NodeId from, NodeId to) { cuts_.insert({from, to}); }
    void heal();
    bool link_ok(NodeId from, NodeId to) const;
    // Drops every queued message to `id`.
    size_t drop_to(NodeId id);

    // ---- processing ----
    bool process_ready(NodeId id);
    size_t deliver_to(NodeId id, size_t max = SIZE_MAX);
    // Handles Readys and delivers messages until nothing moves.
    void stabilize(size_t max_rounds = 100000);
    void tick(NodeId id, int n = 1);
    // Ticks every running node once and lets the network settle, `rounds` times.
    void tick_all(int rounds);
    void crash(NodeId id);
    Status restart(NodeId id);

    // The leader with the highest term among running peers, or kNoNode.
    NodeId leader() const;
    // campaign(id) and stabilize.
    Status elect(NodeId id);

    std::function<void(const std::string&)> trace;

  private:
    void emit(const std::string& s) {
        if (trace) trace(s);
    }

    Config base_;
    std::map<NodeId, std::unique_ptr<Peer>> peers_;
    std::deque<Message> queue_;
    std::vector<std::set<NodeId>> groups_;
    std::set<std::pair<NodeId, NodeId>> cuts_;
};

}  // namespace raftd::raft::testing
