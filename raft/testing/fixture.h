// Fixture: one Node over a MemoryStorage preloaded with a configuration, a term and a log,
// for tests that step single messages and inspect exactly what comes out.
//
// Owns: the storage and the node. drain() plays the caller's part of the persistence
// contract: it persists each Ready into the storage before advancing.
// Never: networking; tests route messages by hand.
// Thread rules: single-threaded test code.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/node.h"

namespace raftd::raft::testing {

struct FixtureOptions {
    std::vector<NodeId> voters_{1, 2, 3};
    std::vector<NodeId> learners_;
    std::vector<NodeId> outgoing_;  // non-empty: a joint configuration voters_ && outgoing_
    Term term_ = 0;
    NodeId vote_ = kNoNode;
    Index commit_ = 0;
    std::vector<Term> log_terms_;  // entries 1..n with these terms (data "e<index>")

    FixtureOptions& voters(std::vector<NodeId> v) {
        voters_ = std::move(v);
        return *this;
    }
    FixtureOptions& learners(std::vector<NodeId> v) {
        learners_ = std::move(v);
        return *this;
    }
    FixtureOptions& outgoing(std::vector<NodeId> v) {
        outgoing_ = std::move(v);
        return *this;
    }
    FixtureOptions& term(Term t) {
        term_ = t;
        return *this;
    }
    FixtureOptions& vote(NodeId v) {
        vote_ = v;
        return *this;
    }
    FixtureOptions& commit(Index c) {
        commit_ = c;
        return *this;
    }
    FixtureOptions& log(std::vector<Term> terms) {
        log_terms_ = std::move(terms);
        return *this;
    }
};
inline FixtureOptions opts() {
    return {};
}

Config test_config(NodeId id);

class Fixture {
  public:
    Fixture(NodeId id, const FixtureOptions& opt, const Config& cfg);
    explicit Fixture(NodeId id, const FixtureOptions& opt = opts())
        : Fixture(id, opt, test_config(id)) {}

    Node& node() { return *node_; }
    Raft const& raft() const { return node_->raft(); }
    MemoryStorage& storage() { return storage_; }
    Status step(const Message& m) { return node_->step(m); }
    // Processes Readys until none is left, persisting each; returns every message sent,
    // immediate and persisted alike, and keeps the last Readys for inspection.
    std::vector<Message> drain();
    // Steps `m` and drains: the one message of `type` the node sent (its answer to `m`), or
    // nullopt when the step failed or it sent no such message, or several.
    std::optional<Message> reply(const Message& m, MessageType type);
    std::vector<Ready>& readys() { return readys_; }
    std::vector<Entry>& applied() { return applied_; }
    std::vector<ReadState>& read_states() { return reads_; }
    // Ticks until the node becomes a (pre-)candidate or n ticks passed.
    void tick(int n);

  private:
    MemoryStorage storage_;
    std::unique_ptr<Node> node_;
    std::vector<Ready> readys_;
    std::vector<Entry> applied_;
    std::vector<ReadState> reads_;
};

// Campaigns and feeds granted votes from the other voters until f leads; drains.
void make_leader(Fixture& f);
// Config with election_tick 10, heartbeat_tick 1, pre-vote and check-quorum as given.
Config config_with(NodeId id, bool pre_vote, bool check_quorum);

Message msg(MessageType type, NodeId from, NodeId to, Term term);
// A successful AppendEntries response: `from` holds the leader's log up to `index`.
Message ack(NodeId from, NodeId to, Term term, Index index);
Entry entry(Index index, Term term, const std::string& data = "");
std::vector<Message> filter(const std::vector<Message>& ms, MessageType type);

}  // namespace raftd::raft::testing
