#include "raft/testing/fixture.h"

#include <cstdlib>

namespace raftd::raft::testing {

Config test_config(NodeId id) {
    Config c;
    c.id = id;
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.pre_vote = false;
    c.check_quorum = false;
    c.batch_appends = false;
    c.quiet_commit_notices = false;
    c.seed = 42;
    return c;
}

Fixture::Fixture(NodeId id, const FixtureOptions& opt, const Config& cfg) {
    SnapshotMeta meta;
    meta.conf.voters = opt.voters_;
    meta.conf.learners = opt.learners_;
    meta.conf.voters_outgoing = opt.outgoing_;
    (void)storage_.apply_snapshot(meta, "");
    std::vector<Entry> ents;
    for (size_t i = 0; i < opt.log_terms_.size(); ++i) {
        ents.push_back(entry(i + 1, opt.log_terms_[i], "e" + std::to_string(i + 1)));
    }
    (void)storage_.append(ents);
    storage_.set_hard_state({opt.term_, opt.vote_, opt.commit_});
    Config c = cfg;
    c.id = id;
    c.applied = opt.commit_;
    auto n = Node::create(c, storage_, &storage_);
    if (!n) std::abort();  // a broken fixture is a bug in the test itself
    node_ = std::move(n).value();
}

std::vector<Message> Fixture::drain() {
    std::vector<Message> out;
    readys_.clear();
    while (node_->has_ready()) {
        Ready rd = node_->ready();
        if (rd.snapshot) (void)storage_.apply_snapshot(*rd.snapshot, "");
        (void)storage_.append(rd.entries);
        if (rd.hard_state) storage_.set_hard_state(*rd.hard_state);
        out.insert(out.end(), rd.messages.begin(), rd.messages.end());
        out.insert(out.end(), rd.persisted_messages.begin(), rd.persisted_messages.end());
        applied_.insert(applied_.end(), rd.committed_entries.begin(), rd.committed_entries.end());
        reads_.insert(reads_.end(), rd.read_states.begin(), rd.read_states.end());
        readys_.push_back(std::move(rd));
        node_->advance();
    }
    return out;
}

void Fixture::tick(int n) {
    for (int i = 0; i < n; ++i)
        node_->tick();
}

void make_leader(Fixture& f) {
    if (!f.node().campaign()) std::abort();
    f.drain();
    std::vector<NodeId> voters = f.node().conf_state().voters;
    for (NodeId v : f.node().conf_state().voters_outgoing)
        voters.push_back(v);
    for (int round = 0; round < 2 && f.node().role() != Role::kLeader; ++round) {
        bool pre = f.node().role() == Role::kPreCandidate;
        Term t = f.node().term() + (pre ? 1 : 0);
        for (NodeId v : voters) {
            if (f.node().role() == Role::kLeader) break;
            if (v == f.node().id()) continue;
            (void)f.step(msg(pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse, v,
                             f.node().id(), t));
        }
        f.drain();
    }
    if (f.node().role() != Role::kLeader) std::abort();  // the test's setup is wrong
}

Config config_with(NodeId id, bool pre_vote, bool check_quorum) {
    Config c = test_config(id);
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    return c;
}

std::optional<Message> Fixture::reply(const Message& m, MessageType type) {
    if (!step(m)) return std::nullopt;
    std::vector<Message> out = filter(drain(), type);
    if (out.size() != 1) return std::nullopt;
    return out[0];
}

Message msg(MessageType type, NodeId from, NodeId to, Term term) {
    Message m;
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

Message ack(NodeId from, NodeId to, Term term, Index index) {
    Message m = msg(MessageType::kAppendResponse, from, to, term);
    m.index = index;
    return m;
}

Entry entry(Index index, Term term, const std::string& data) {
    Entry e;
    e.index = index;
    e.term = term;
    e.type = EntryType::kData;
    e.data = Payload(data);
    return e;
}

std::vector<Message> filter(const std::vector<Message>& ms, MessageType type) {
    std::vector<Message> out;
    for (const Message& m : ms) {
        if (m.type == type) out.push_back(m);
    }
    return out;
}

}  // namespace raftd::raft::testing
