#include "raft/testing/sim.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "raft/confchange_codec.h"
#include "raft/testing/cluster.h"
#include "raft/testing/peer.h"

namespace raftd::raft::testing {

namespace {

constexpr size_t kTraceLines = 400;
constexpr int kRoundsPerTick = 3;

// The default replica: a Peer, which models the persistence contract itself over a
// MemoryStorage where every write is durable at once.
class PeerReplica final : public SimReplica {
  public:
    explicit PeerReplica(const SimReplicaParams& p) : peer_(p.id, p.cfg), obs_(*p.observer) {
        peer_.async_leader = p.async_leader;
        if (!p.bootstrap.empty()) peer_.bootstrap(p.bootstrap);
        peer_.on_apply = [this](NodeId who, const Entry& e) { obs_.applied(who, e); };
        peer_.on_restore = [this](NodeId who, const SnapshotMeta& m, const std::vector<Entry>& a) {
            obs_.restored(who, m, a);
        };
    }
    bool up() const override { return peer_.up(); }
    Node& node() override { return peer_.node(); }
    Status start() override { return peer_.start(); }
    void crash(bool mid_write) override {
        if (mid_write && peer_.has_pending()) {
            peer_.persist_partially_then_crash();
        } else {
            peer_.crash();
        }
    }
    void tick() override { peer_.node().tick(); }
    Work work(Rng& rng, double lag, std::vector<Message>& out) override {
        const NodeId id = peer_.id();
        if (peer_.has_write() && rng.chance(0.5)) {
            // A leader's own entries, written while it went on replicating.
            Status st = peer_.complete_write();
            if (!st) obs_.fail("write on " + std::to_string(id) + ": " + st.to_string());
            return Work::kOwnWrite;
        }
        if (peer_.has_pending()) {
            // The write of the outstanding Ready may still be in progress.
            if (rng.chance(lag)) return Work::kNone;
            Status st = peer_.persist(out);
            if (!st) obs_.fail("persist on " + std::to_string(id) + ": " + st.to_string());
            return Work::kPersisted;
        }
        if (!peer_.take_ready(out)) return Work::kNone;
        const Ready& rd = peer_.last_taken();
        if (rd.soft_state) obs_.role_changed(id, *rd.soft_state);
        if (!rd.entries.empty()) {
            const RaftLog& log = peer_.node().raft().log();
            const Entry& first = rd.entries.front();
            // The node's log holds the entries already: the term before them is the
            // predecessor's unless they start the log.
            obs_.appended(id, rd.entries, log.term_or_zero(first.index - 1));
        }
        return Work::kTook;
    }
    const std::vector<Entry>& applied() const override { return peer_.applied(); }
    std::vector<ReadState>& read_states() override { return peer_.read_states(); }
    Index first_index() const override { return peer_.storage().first_index(); }
    Index snapshot_index() const override { return peer_.storage().snapshot_meta().index; }
    Status compact(Index i) override { return peer_.compact(i); }

  private:
    Peer peer_;
    SimObserver& obs_;
};

class Sim final : public SimObserver {
  public:
    explicit Sim(const SimOptions& opt) : opt_(opt), rng_(opt.seed * 0x2545f4914f6cdd1dULL + 7) {}

    SimResult run();

  private:
    // ---- set-up ----
    void choose_parameters();
    void create_peers();

    // ---- one tick of cluster life ----
    void tick_all();
    void process_rounds(bool faults);
    void handle_readys();
    void deliver_due();
    void send(const std::vector<Message>& msgs);
    void inject_faults();

    // ---- actions ----
    NodeId leader() const;
    void propose();
    void conf_change();
    void crash(NodeId id, bool partial);
    void restart(NodeId id);
    void compact();
    void random_partition();
    void heal();

    // ---- checks (SimObserver) ----
    void check_leaders();
    void appended(NodeId id, const std::vector<Entry>& ents, Term prev) override;
    void check_reads(NodeId id);
    void read();
    void applied(NodeId id, const Entry& e) override;
    void restored(NodeId id, const SnapshotMeta& meta, const std::vector<Entry>& app) override;
    void role_changed(NodeId id, const SoftState& ss) override;
    void record_committed(NodeId id, const Entry& e);
    bool liveness(const char* phase);
    void fail(const std::string& why) override;

    void trace(const std::string& s) override {
        if (opt_.print_trace) std::fprintf(stderr, "%s\n", s.c_str());
        trace_.push_back(s);
        if (trace_.size() > kTraceLines) trace_.pop_front();
    }
    std::string at() const { return "t=" + std::to_string(now_) + " "; }
    bool async_leader_ = false;  // leaders write their entries while replicating
    bool chance(double p) { return rng_.chance(p); }
    template <typename T>
    const T& pick(const std::vector<T>& v) {
        return v[rng_.uniform(0, v.size())];
    }
    std::vector<NodeId> up_ids() const {
        std::vector<NodeId> v;
        for (const auto& [id, p] : peers_)
            if (p->up()) v.push_back(id);
        return v;
    }

    SimOptions opt_;
    Rng rng_;
    Config base_;
    double loss_ = 0, dup_ = 0, p_partition_ = 0, p_heal_ = 0, p_crash_ = 0, p_restart_ = 0;
    double p_propose_ = 0, p_conf_ = 0, p_compact_ = 0, p_transfer_ = 0, p_campaign_ = 0;
    double p_lag_ = 0, p_read_ = 0;
    uint64_t max_delay_ = 0;

    std::map<NodeId, std::unique_ptr<SimReplica>> peers_;
    struct InFlight {
        Message m;
        uint64_t at;
    };
    std::vector<InFlight> net_;
    std::map<NodeId, int> group_;
    uint64_t now_ = 0;
    uint64_t proposals_ = 0;
    uint64_t reads_ = 0;
    // Outstanding reads: context -> entries known committed when the read was issued. A
    // linearizable read must be served at an index at least that high.
    std::map<std::string, Index> pending_reads_;

    // Checker state.
    std::map<Term, NodeId> leader_of_;
    struct Sig {
        size_t data_hash;
        Term prev_term;
    };
    std::map<std::pair<Index, Term>, Sig> sigs_;
    std::vector<Entry> committed_;  // the agreed committed sequence: committed_[i - 1] is index i
    ConfState agreed_conf_;         // the configuration that sequence leads to
    std::map<NodeId, Index> applied_;

    std::deque<std::string> trace_;
    bool failed_ = false;
    SimResult res_;
};

void Sim::fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    res_.ok = false;
    res_.failure =
        "seed " + std::to_string(opt_.seed) + " at tick " + std::to_string(now_) + ": " + why;
    trace("FAILED: " + why);
    for (const auto& [id, p] : peers_) {
        trace(p->up() ? "  " + describe_status(p->node()) : "  " + std::to_string(id) + ": down");
    }
    trace("  agreed configuration: " + describe(agreed_conf_) + ", " +
          std::to_string(committed_.size()) + " entries committed");
}

void Sim::choose_parameters() {
    base_.election_tick = 10;
    base_.heartbeat_tick = 1 + static_cast<int>(rng_.uniform(0, 3));
    base_.pre_vote = chance(0.7);
    base_.check_quorum = chance(0.7);
    base_.lease_read = base_.check_quorum && chance(0.5);
    base_.max_inflight_msgs = rng_.uniform(1, 9);
    base_.max_inflight_bytes = chance(0.3) ? rng_.uniform(64, 512) : 0;
    base_.max_size_per_msg = chance(0.5) ? rng_.uniform(1, 200) : 1 << 20;
    base_.max_uncommitted_bytes = chance(0.2) ? rng_.uniform(32, 256) : 0;
    base_.max_committed_bytes_per_ready = chance(0.3) ? rng_.uniform(1, 100) : 0;
    base_.max_snapshot_chunk_bytes = chance(0.5) ? rng_.uniform(256, 2048) : 1 << 20;
    base_.batch_appends = chance(0.5);
    base_.quiet_commit_notices = chance(0.5);
    async_leader_ = chance(0.5);
    base_.seed = opt_.seed;
    loss_ = chance(0.8) ? rng_.uniform(0, 21) / 100.0 : 0;
    dup_ = chance(0.5) ? rng_.uniform(0, 11) / 100.0 : 0;
    max_delay_ = rng_.uniform(0, 4);
    p_partition_ = rng_.uniform(0, 3) / 100.0;
    p_heal_ = rng_.uniform(3, 10) / 100.0;
    p_crash_ = rng_.uniform(0, 3) / 100.0;
    p_restart_ = rng_.uniform(5, 20) / 100.0;
    p_propose_ = rng_.uniform(10, 60) / 100.0;
    p_conf_ = rng_.uniform(0, 4) / 100.0;
    p_compact_ = rng_.uniform(0, 5) / 100.0;
    p_transfer_ = rng_.uniform(0, 2) / 100.0;
    p_campaign_ = rng_.uniform(0, 2) / 100.0;
    p_lag_ = rng_.uniform(0, 50) / 100.0;
    p_read_ = rng_.uniform(0, 10) / 100.0;
    trace("seed " + std::to_string(opt_.seed) + ": heartbeat=" +
          std::to_string(base_.heartbeat_tick) + " pre_vote=" + std::to_string(base_.pre_vote) +
          " check_quorum=" + std::to_string(base_.check_quorum) +
          " lease_read=" + std::to_string(base_.lease_read) + " batch_appends=" +
          std::to_string(base_.batch_appends) + " async_leader=" + std::to_string(async_leader_) +
          " quiet=" + std::to_string(base_.quiet_commit_notices) +
          " inflight=" + std::to_string(base_.max_inflight_msgs) + "/" +
          std::to_string(base_.max_inflight_bytes) + " loss=" + std::to_string(loss_) +
          " dup=" + std::to_string(dup_) + " delay<=" + std::to_string(max_delay_));
}

void Sim::create_peers() {
    size_t n = rng_.uniform(3, 8);
    size_t voters = rng_.uniform(std::min<size_t>(n, 3), n + 1);
    std::vector<Member> members;
    for (NodeId id = 1; id <= voters; ++id)
        members.push_back({id, "n" + std::to_string(id) + ":7000"});
    for (NodeId id = 1; id <= n; ++id) {
        // Each node gets its own well-mixed jitter seed, as raftd does (random_device): with one
        // shared seed, raft's id mixing made two nodes' streams the same shifted by one draw
        // for some seeds (seed 392), and two voters then split every election in lockstep.
        SimReplicaParams rp;
        rp.id = id;
        rp.cfg = base_;
        rp.cfg.id = id;
        rp.cfg.seed = Rng(opt_.seed ^ Rng(id).next()).next();
        if (id <= voters) rp.bootstrap = members;
        rp.async_leader = async_leader_;
        rp.seed = rp.cfg.seed ^ 0x5eed;
        rp.observer = this;
        auto p = opt_.make_replica ? opt_.make_replica(rp) : std::make_unique<PeerReplica>(rp);
        Status st = p->start();
        if (!st) fail("start " + std::to_string(id) + ": " + st.to_string());
        // A replica may count what is committed on its disk as applied from the start (the
        // daemon does): that must be the agreed prefix too.
        applied_[id] = p->applied_index();
        for (const Entry& e : p->applied())
            record_committed(id, e);
        group_[id] = 0;
        peers_[id] = std::move(p);
    }
    trace("nodes=" + std::to_string(n) + " voters=" + std::to_string(voters));
}

// ---- network and Ready handling ----------------------------------------------------------------

void Sim::send(const std::vector<Message>& msgs) {
    for (const Message& m : msgs) {
        ++res_.messages;
        if (chance(loss_)) continue;
        net_.push_back({m, now_ + rng_.uniform(0, max_delay_ + 1)});
        if (chance(dup_)) net_.push_back({m, now_ + rng_.uniform(0, max_delay_ + 1)});
    }
}

void Sim::handle_readys() {
    std::vector<NodeId> ids = up_ids();
    // A random order each round: nodes race.
    for (size_t i = ids.size(); i > 1; --i)
        std::swap(ids[i - 1], ids[rng_.uniform(0, i)]);
    for (NodeId id : ids) {
        SimReplica& p = *peers_[id];
        if (failed_) return;
        std::vector<Message> out;
        switch (p.work(rng_, p_lag_, out)) {
            case SimReplica::Work::kNone:
                break;
            case SimReplica::Work::kOwnWrite:
                ++res_.steps;
                ++res_.async_writes;
                break;
            case SimReplica::Work::kPersisted:
                ++res_.steps;
                check_reads(id);
                send(out);
                check_leaders();
                break;
            case SimReplica::Work::kTook:
                ++res_.steps;
                send(out);
                break;
        }
    }
}

void Sim::role_changed(NodeId id, const SoftState& ss) {
    trace(at() + std::to_string(id) + " is " + std::string(role_name(ss.role)) + " term " +
          std::to_string(peers_[id]->node().term()) + " leader " + std::to_string(ss.leader));
}

void Sim::deliver_due() {
    std::vector<InFlight> due;
    std::vector<InFlight> later;
    for (auto& f : net_)
        (f.at <= now_ ? due : later).push_back(std::move(f));
    net_ = std::move(later);
    for (size_t i = due.size(); i > 1; --i)
        std::swap(due[i - 1], due[rng_.uniform(0, i)]);
    for (const InFlight& f : due) {
        if (failed_) return;
        const Message& m = f.m;
        auto it = peers_.find(m.to);
        if (it == peers_.end() || !it->second->up()) continue;
        if (group_[m.from] != group_[m.to]) continue;
        ++res_.steps;
        trace(at() + describe(m));
        Status st = it->second->node().step(m);
        if (!st) fail("step refused a message from a correct peer: " + st.to_string());
        check_leaders();
    }
}

void Sim::tick_all() {
    ++now_;
    ++res_.ticks;
    for (NodeId id : up_ids())
        peers_[id]->tick();
}

void Sim::process_rounds(bool faults) {
    for (int r = 0; r < kRoundsPerTick && !failed_; ++r) {
        if (faults && r == 0) inject_faults();
        handle_readys();
        deliver_due();
        check_leaders();
    }
}

// ---- faults and client actions -----------------------------------------------------------------

NodeId Sim::leader() const {
    return highest_term_leader(peers_);
}

void Sim::propose() {
    NodeId l = leader();
    if (l == kNoNode) return;
    std::string data = "p" + std::to_string(++proposals_);
    auto r = peers_[l]->node().propose(Payload(data));
    ++res_.steps;
    if (r) trace(at() + "propose " + data + " on " + std::to_string(l));
}

void Sim::read() {
    auto ids = up_ids();
    if (ids.empty()) return;
    NodeId id = pick(ids);
    std::string ctx = "r" + std::to_string(++reads_);
    if (peers_[id]->node().read_index(ctx)) {
        pending_reads_[ctx] = committed_.size();
        trace(at() + "read " + ctx + " on " + std::to_string(id) + " (" +
              std::to_string(committed_.size()) + " committed)");
    }
}

// Linearizable reads: a read index covers every entry acknowledged before the read began.
void Sim::check_reads(NodeId id) {
    auto& rs = peers_[id]->read_states();
    for (const ReadState& r : rs) {
        auto it = pending_reads_.find(r.context);
        if (it == pending_reads_.end()) {
            fail(std::to_string(id) + " got a read state for unknown context " + r.context);
            return;
        }
        trace(at() + "read " + r.context + " served on " + std::to_string(id) + " at " +
              std::to_string(r.index));
        if (r.index < it->second) {
            fail("stale read: " + r.context + " on " + std::to_string(id) + " at index " +
                 std::to_string(r.index) + " but " + std::to_string(it->second) +
                 " entries were committed when it was issued");
            return;
        }
    }
    rs.clear();
}

void Sim::conf_change() {
    NodeId l = leader();
    if (l == kNoNode) return;
    const ConfState cs = peers_[l]->node().conf_state();
    std::vector<NodeId> voters = cs.voters, learners = cs.learners, others;
    for (const auto& [id, p] : peers_) {
        if (!is_member(cs, id)) others.push_back(id);
    }
    auto single = [](ConfChangeType t, NodeId n) {
        return ConfChangeSingle{t, n, "n" + std::to_string(n) + ":7000"};
    };
    ConfChange cc;
    int kind = static_cast<int>(rng_.uniform(0, 7));
    if (kind == 0 && !others.empty()) {
        cc.changes.push_back(single(ConfChangeType::kAddNode, pick(others)));
    } else if (kind == 1 && !others.empty()) {
        cc.changes.push_back(single(ConfChangeType::kAddLearner, pick(others)));
    } else if (kind == 2 && !learners.empty()) {
        cc.changes.push_back(single(ConfChangeType::kAddNode, pick(learners)));
    } else if (kind == 3 && voters.size() > 1) {
        cc.changes.push_back(single(ConfChangeType::kRemoveNode, pick(voters)));
    } else if (kind == 4 && voters.size() > 1) {
        cc.changes.push_back(single(ConfChangeType::kAddLearner, pick(voters)));
    } else if (kind == 5 && !others.empty() && voters.size() > 1) {
        // Replace a voter: two voters change, so through a joint configuration.
        cc.changes.push_back(single(ConfChangeType::kAddNode, pick(others)));
        cc.changes.push_back(single(ConfChangeType::kRemoveNode, pick(voters)));
        int t = static_cast<int>(rng_.uniform(0, 3));
        cc.transition = t == 0   ? ConfTransition::kAuto
                        : t == 1 ? ConfTransition::kJointImplicit
                                 : ConfTransition::kJointExplicit;
    } else if (kind == 6 && cs.joint()) {
        // Leave an explicit joint configuration (cc.changes stays empty).
    } else {
        return;
    }
    auto r = peers_[l]->node().propose_conf_change(cc);
    ++res_.steps;
    if (r) {
        ++res_.conf_changes;
        trace(at() + "conf change " + describe(cc) + " on " + std::to_string(l) + " at " +
              std::to_string(r->index));
    }
}

void Sim::crash(NodeId id, bool partial) {
    SimReplica& p = *peers_[id];
    trace(at() + "crash " + std::to_string(id) + (partial ? " in the middle of a write" : ""));
    p.crash(partial);
    ++res_.crashes;
    ++res_.steps;
}

void Sim::restart(NodeId id) {
    SimReplica& p = *peers_[id];
    Status st = p.start();
    ++res_.steps;
    if (!st) {
        fail("restart " + std::to_string(id) + ": " + st.to_string());
        return;
    }
    trace(at() + "restart " + std::to_string(id) + " at term " + std::to_string(p.node().term()) +
          " snapshot " + std::to_string(p.snapshot_index()));
    // The application restarts from what it kept: that must be the agreed prefix.
    applied_[id] = p.applied_index();
    for (const Entry& e : p.applied())
        record_committed(id, e);
}

void Sim::compact() {
    std::vector<NodeId> ids = up_ids();
    if (ids.empty()) return;
    NodeId id = pick(ids);
    SimReplica& p = *peers_[id];
    Index applied = p.applied_index();
    if (applied <= p.first_index()) return;
    Index at_index = rng_.uniform(p.first_index(), applied + 1);
    Status st = p.compact(at_index);
    ++res_.steps;
    if (st) trace(at() + "compact " + std::to_string(id) + " to " + std::to_string(at_index));
}

void Sim::random_partition() {
    ++res_.partitions;
    std::string s;
    if (chance(0.5)) {
        NodeId lone = pick(up_ids().empty() ? std::vector<NodeId>{1} : up_ids());
        for (auto& [id, g] : group_)
            g = id == lone ? 1 : 0;
        s = "isolate " + std::to_string(lone);
    } else {
        for (auto& [id, g] : group_) {
            g = static_cast<int>(rng_.uniform(0, 2));
            s += std::to_string(id) + ":" + std::to_string(g) + " ";
        }
        s = "partition " + s;
    }
    trace(at() + s);
}

void Sim::heal() {
    for (auto& [id, g] : group_)
        g = 0;
    trace(at() + "heal");
}

void Sim::inject_faults() {
    if (chance(p_propose_)) propose();
    if (chance(p_conf_)) conf_change();
    if (chance(p_read_)) read();
    if (chance(p_compact_)) compact();
    if (chance(p_transfer_)) {
        NodeId l = leader();
        if (l != kNoNode) {
            auto voters = peers_[l]->node().conf_state().voters;
            NodeId to = pick(voters);
            if (peers_[l]->node().transfer_leader(to)) {
                trace(at() + "transfer leadership " + std::to_string(l) + " -> " +
                      std::to_string(to));
            }
        }
    }
    if (chance(p_campaign_)) {
        auto ids = up_ids();
        if (!ids.empty()) {
            NodeId id = pick(ids);
            if (peers_[id]->node().campaign()) trace(at() + std::to_string(id) + " campaigns");
        }
    }
    bool partitioned = std::any_of(group_.begin(), group_.end(), [](auto& g) { return g.second; });
    if (!partitioned && chance(p_partition_)) random_partition();
    if (partitioned && chance(p_heal_)) heal();
    auto ids = up_ids();
    // Keep a majority of nodes running most of the time; crashes are the point, not a
    // cluster that is permanently down.
    if (ids.size() * 2 > peers_.size() + 1 && chance(p_crash_)) crash(pick(ids), chance(0.5));
    if (ids.size() < peers_.size() && chance(p_restart_)) {
        std::vector<NodeId> down;
        for (const auto& [id, p] : peers_)
            if (!p->up()) down.push_back(id);
        restart(pick(down));
    }
}

// ---- checks ------------------------------------------------------------------------------------

// Election safety (Figure 3): at most one leader per term. And leader completeness: the
// first time a leader of a term is seen, its log holds every entry committed so far.
void Sim::check_leaders() {
    for (const auto& [id, p] : peers_) {
        if (failed_) return;
        if (!p->up() || p->node().role() != Role::kLeader) continue;
        Term t = p->node().term();
        // A leader whose term is not durable yet has sent nothing in it (its messages wait for
        // that write, Raft::send) and commits nothing: a crash now makes it a leader nobody
        // heard of, and another may lead the same term. It counts once its term is durable.
        if (p->node().raft().durable_hard_state().term != t) continue;
        auto [it, fresh] = leader_of_.emplace(t, id);
        if (!fresh) {
            if (it->second != id) {
                fail("two leaders in term " + std::to_string(t) + ": " +
                     std::to_string(it->second) + " and " + std::to_string(id));
            }
            continue;
        }
        ++res_.leaders;
        const RaftLog& log = p->node().raft().log();
        if (log.last_index() < committed_.size()) {
            fail("leader " + std::to_string(id) + " of term " + std::to_string(t) +
                 " lacks committed entries: its log ends at " + std::to_string(log.last_index()) +
                 ", " + std::to_string(committed_.size()) + " are committed");
            return;
        }
        for (Index i = std::max<Index>(log.first_index(), 1); i <= committed_.size(); ++i) {
            if (log.term_or_zero(i) != committed_[i - 1].term) {
                fail("leader " + std::to_string(id) + " of term " + std::to_string(t) +
                     " has term " + std::to_string(log.term_or_zero(i)) + " at committed index " +
                     std::to_string(i) + " (committed: " + describe(committed_[i - 1]) + ")");
                return;
            }
        }
    }
}

// Log matching: an (index, term) pair identifies one entry and everything before it. Every
// entry enters some log through a Ready, so checking each entry's content and predecessor
// term there, against every other copy ever seen, checks the property by induction.
void Sim::appended(NodeId id, const std::vector<Entry>& ents, Term prev_first) {
    for (size_t k = 0; k < ents.size(); ++k) {
        const Entry& e = ents[k];
        Term prev = k > 0 ? ents[k - 1].term : prev_first;
        size_t h = std::hash<std::string_view>()(e.data.view()) * 31 + static_cast<size_t>(e.type);
        auto [it, fresh] = sigs_.emplace(std::make_pair(e.index, e.term), Sig{h, prev});
        if (!fresh && (it->second.data_hash != h || it->second.prev_term != prev)) {
            fail("log matching violated on " + std::to_string(id) + ": entry " + describe(e) +
                 " after term " + std::to_string(prev) + " differs from another copy (after term " +
                 std::to_string(it->second.prev_term) + ")");
            return;
        }
    }
}

void Sim::record_committed(NodeId id, const Entry& e) {
    if (e.index <= committed_.size()) {
        const Entry& c = committed_[e.index - 1];
        if (c.term != e.term || c.type != e.type || c.data != e.data) {
            fail("state machine safety: " + std::to_string(id) + " applied " + describe(e) +
                 " but " + describe(c) + " was applied at that index before");
        }
        return;
    }
    if (e.index != committed_.size() + 1) {
        fail(std::to_string(id) + " applied " + describe(e) + " but only " +
             std::to_string(committed_.size()) + " entries are known committed");
        return;
    }
    committed_.push_back(e);
    if (e.type == EntryType::kConfig) {
        auto cc = decode_conf_change(e.data.view());
        if (!cc) {
            fail("undecodable config entry " + describe(e));
            return;
        }
        if (auto next = apply_conf_change(agreed_conf_, *cc)) agreed_conf_ = *next;
    }
}

// Every node delivers a prefix of one agreed sequence, without gaps or repeats.
void Sim::applied(NodeId id, const Entry& e) {
    Index& last = applied_[id];
    if (e.index != last + 1) {
        fail(std::to_string(id) + " applied index " + std::to_string(e.index) + " after " +
             std::to_string(last));
        return;
    }
    last = e.index;
    record_committed(id, e);
}

void Sim::restored(NodeId id, const SnapshotMeta& meta, const std::vector<Entry>& app) {
    ++res_.snapshots;
    trace(at() + std::to_string(id) + " installs snapshot " + std::to_string(meta.term) + "/" +
          std::to_string(meta.index));
    if (meta.index < applied_[id]) {
        fail(std::to_string(id) + " installed snapshot " + std::to_string(meta.index) +
             " behind what it applied (" + std::to_string(applied_[id]) + ")");
        return;
    }
    if (app.size() != meta.index) {
        fail("snapshot at " + std::to_string(meta.index) + " holds " + std::to_string(app.size()) +
             " entries");
        return;
    }
    for (const Entry& e : app)
        record_committed(id, e);
    applied_[id] = meta.index;
}

// After the faults stop: every member of the agreed configuration runs, and within a bounded
// number of ticks a leader is elected and commits a new proposal (liveness). Then every
// member applies it; that may take longer when a member is far behind and the flow-control
// settings allow one small append per round trip, so that bound grows with the backlog.
bool Sim::liveness(const char* phase) {
    uint64_t start = now_;
    // Entries appended but not committed must be replicated before anything new commits;
    // with an inflight window of one small append that is a round trip per entry.
    uint64_t backlog = 0;
    for (const auto& [id, p] : peers_) {
        if (p->up()) {
            Index last = p->node().raft().log().last_index();
            if (last > committed_.size())
                backlog = std::max<uint64_t>(backlog, last - committed_.size());
        }
    }
    uint64_t round_trip = 2 * (max_delay_ + 1) + 2;
    // A commit is observed when some application applies it; after a full restart every
    // application first re-applies the whole log, possibly one entry per Ready
    // (max_committed_bytes_per_ready), hence a tick per committed entry on top.
    uint64_t commit_deadline = now_ +
                               static_cast<uint64_t>(opt_.liveness_election_timeouts) *
                                   static_cast<uint64_t>(base_.election_tick) +
                               backlog * round_trip + committed_.size();
    uint64_t apply_deadline = commit_deadline + (committed_.size() + backlog + 10) * round_trip;
    EntryId probe;  // index 0: nothing proposed yet
    bool committed = false;
    std::string data = std::string("live-") + phase;
    std::string last_refusal;
    while (!failed_) {
        if (!committed && now_ >= commit_deadline) {
            fail(std::string(phase) + ": no leader committed a new entry within " +
                 std::to_string(opt_.liveness_election_timeouts) + " election timeouts");
            return false;
        }
        if (now_ >= apply_deadline) {
            fail(std::string(phase) + ": the committed entry " + std::to_string(probe.index) +
                 " did not reach every member within " + std::to_string(apply_deadline - start) +
                 " ticks");
            return false;
        }
        // The operator runs the committed configuration's members, and a removed node only
        // as long as some member still counts on it: a member that has not learned that its
        // removal committed still needs its vote. A removed node nobody needs is shut down;
        // left running, one that never learned of its removal would campaign forever
        // (thesis 4.2.3).
        std::set<NodeId> needed;
        for (const auto& [id, p] : peers_) {
            if (is_member(agreed_conf_, id) || agreed_conf_.voters.empty()) needed.insert(id);
        }
        for (NodeId m : std::set<NodeId>(needed)) {
            SimReplica& p = *peers_[m];
            if (!p.up()) continue;
            for (NodeId other : all_members(p.node().conf_state()))
                needed.insert(other);
        }
        for (const auto& [id, p] : peers_) {
            bool need = needed.count(id) != 0;
            if (need && !p->up()) restart(id);
            if (!need && p->up()) crash(id, false);
        }
        tick_all();
        process_rounds(false);
        NodeId l = leader();
        if (probe.index == 0 && l != kNoNode) {
            auto r = peers_[l]->node().propose(Payload(data));
            if (r) {
                probe = r.value();
            } else if (r.status().message() != last_refusal) {
                last_refusal = r.status().message();
                trace(at() + "proposal refused by " + std::to_string(l) + ": " + last_refusal);
            }
        }
        if (probe.index != 0 && l != kNoNode && peers_[l]->node().term() > probe.term &&
            !peers_[l]->node().raft().log().match_term(probe.index, probe.term)) {
            probe = EntryId{};  // a later leader does not have it: it was lost, propose again
            continue;
        }
        if (probe.index == 0 || probe.index > committed_.size()) continue;
        const Entry& c = committed_[probe.index - 1];
        if (c.term != probe.term || c.data.view() != data) {
            probe = EntryId{};  // lost to a leader change: propose again
            continue;
        }
        if (!committed) {
            committed = true;
            trace(at() + phase + ": a new entry committed after " + std::to_string(now_ - start) +
                  " ticks");
        }
        bool all = true;
        for (const auto& [id, p] : peers_) {
            if (is_member(agreed_conf_, id) && p->applied_index() < probe.index) all = false;
        }
        if (all) {
            trace(at() + phase + ": applied by every member after " + std::to_string(now_ - start) +
                  " ticks");
            return true;
        }
    }
    return false;
}

SimResult Sim::run() {
    choose_parameters();
    create_peers();
    for (int t = 0; t < opt_.fault_ticks && !failed_; ++t) {
        tick_all();
        process_rounds(true);
    }
    if (!failed_) {
        // Heal: no more partitions, loss or duplication (delays stay), everyone restarted.
        heal();
        loss_ = 0;
        dup_ = 0;
        trace(at() + "faults stop");
        liveness("after healing");
    }
    if (!failed_) {
        // Nothing acknowledged is lost even if every node loses power at once.
        for (const auto& [id, p] : peers_)
            if (p->up()) crash(id, chance(0.5));
        net_.clear();
        liveness("after a full restart");
    }
    res_.committed = committed_.size();
    for (const auto& [id, p] : peers_)
        p->add_counters(res_.counters);
    if (failed_) {
        for (const std::string& l : trace_)
            res_.trace += l + "\n";
    }
    return res_;
}

}  // namespace

SimResult run_simulation(const SimOptions& opt) {
    Sim sim(opt);
    return sim.run();
}

}  // namespace raftd::raft::testing
