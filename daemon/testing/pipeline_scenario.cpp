// The pipeline scenario interpreter: see pipeline_scenario.h and
// tests/scenarios/pipeline/README.md.
#include "daemon/testing/pipeline_scenario.h"

#include <algorithm>
#include <sstream>

#include "daemon/ready_pipeline.h"
#include "raft/memory_storage.h"
#include "raft/node.h"
#include "raft/testing/scenario.h"

namespace raftd::daemon::testing {

using raft::testing::parse_bool;
using raft::testing::parse_u64;
using raft::testing::split_words;

namespace {

std::string hs_text(const raft::HardState& hs) {
    return "hs{t" + std::to_string(hs.term) + " v" + std::to_string(hs.vote) + " c" +
           std::to_string(hs.commit) + "}";
}

}  // namespace

// One node: the Node, its pipeline, and the fake world the pipeline acts on.
struct PipelineScenario::SimNode final : PipelineActions {
    SimNode(PipelineScenario& w, raft::NodeId i) : world(w), id(i) {}

    PipelineScenario& world;
    raft::NodeId id;
    raft::MemoryStorage storage;  // what completed jobs made durable
    std::unique_ptr<raft::Node> node;
    std::unique_ptr<ReadyPipeline> pipe;
    std::deque<PersistJob> worker;         // handed to the storage thread, oldest first
    std::string staging;                   // snapshot chunks written, not yet installed
    bool busy = false;                     // the storage thread runs something else (an upload)
    bool output = false;                   // clients have output regardless of replies
    std::vector<raft::EntryId> proposals;  // proposed here, not yet delivered
    std::vector<raft::Index> replies;      // delivered proposals whose replies wait
    std::string ended;                     // "fatal" / "drained"

    void emit(const std::string& s) {
        if (!world.quiet_) world.out_ += std::to_string(id) + ": " + s + "\n";
    }

    Status start(const raft::Config& base) {
        raft::Config cfg = base;
        cfg.id = id;
        cfg.seed = id;
        // As the daemon: everything committed before the start counts as delivered.
        cfg.applied = storage.initial_state().hard.commit;
        auto n = raft::Node::create(cfg, storage, &storage);
        if (!n) return n.status();
        node = std::move(n).value();
        pipe = std::make_unique<ReadyPipeline>(*node, *this, storage.initial_state().hard,
                                               cfg.applied);
        return Status::ok();
    }

    // Makes `job` durable in the MemoryStorage, in the order DurableStore::persist does.
    Status apply(PersistJob& job) {
        for (const auto& c : job.chunks) {
            if (c.offset == 0) staging.clear();
            staging += c.data;
        }
        if (job.snapshot) {
            if (Status st = storage.apply_snapshot(*job.snapshot, staging); !st) return st;
            staging.clear();
        }
        if (!job.entries.empty()) {
            if (Status st = storage.append(job.entries); !st) return st;
        }
        if (job.hard_state) storage.set_hard_state(*job.hard_state);
        return Status::ok();
    }

    // ---- PipelineActions ----
    void send(const std::vector<raft::Message>& msgs) override {
        for (const auto& m : msgs) {
            emit("send " + raft::describe(m));
            world.queue_.push_back(m);
        }
    }
    bool storage_idle() override { return worker.empty() && !busy; }
    Status persist_inline(PersistJob& job) override {
        emit("persist inline: " + describe(job));
        return apply(job);
    }
    void persist_on_worker(PersistJob job) override {
        emit("persist on worker: " + describe(job));
        worker.push_back(std::move(job));
    }
    bool clients_have_output() override { return output || !replies.empty(); }
    void flush_clients() override {
        std::string s = replies.empty() ? "flush clients" : "reply";
        for (raft::Index i : replies)
            s += " " + std::to_string(i);
        replies.clear();
        emit(s);
    }
    void deliver(const std::vector<raft::Entry>& committed) override {
        std::string s = "deliver";
        for (const auto& e : committed) {
            s += " " + raft::describe(e);
            auto it = std::find(proposals.begin(), proposals.end(), raft::EntryId{e.index, e.term});
            if (it != proposals.end()) {
                proposals.erase(it);
                replies.push_back(e.index);
            }
        }
        emit(s);
    }
    void read_states(const std::vector<raft::ReadState>& rs) override {
        std::string s = "read states";
        for (const auto& r : rs)
            s += " " + r.context + "@" + std::to_string(r.index);
        emit(s);
    }
    void snapshot_installed(const raft::SnapshotMeta& meta) override {
        emit("snapshot installed " + std::to_string(meta.term) + "/" + std::to_string(meta.index));
    }
    void role_changed(const raft::SoftState& ss) override {
        emit("role " + std::string(raft::role_name(ss.role)) +
             " leader=" + std::to_string(ss.leader));
    }
    void term_changed(raft::Term term) override { emit("term " + std::to_string(term)); }
    void advanced(const Advanced& a) override {
        emit(std::string(a.entries_pending ? "advance except entries" : "advance") +
             (a.conf_may_change ? " (configuration may change)" : ""));
    }
    void own_entries_durable(raft::EntryId last) override {
        emit("own entries durable up to " + std::to_string(last.term) + "/" +
             std::to_string(last.index));
    }
    void fatal(const std::string& why) override {
        ended = "fatal";
        emit("FATAL " + why);
    }
    void drained() override {
        ended = "drained";
        emit("drained");
    }
};

PipelineScenario::PipelineScenario() = default;
PipelineScenario::~PipelineScenario() = default;

std::string PipelineScenario::run(const std::string& command_line) {
    out_.clear();
    quiet_ = false;
    std::string err = exec(split_words(command_line));
    quiet_ = false;
    if (!err.empty()) out_ += "error: " + err + "\n";
    std::string s = out_;
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    return s.empty() ? "ok" : s;
}

PipelineScenario::SimNode* PipelineScenario::node(const std::string& arg) {
    uint64_t id = 0;
    if (!parse_u64(arg, id)) return nullptr;
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : it->second.get();
}

std::string PipelineScenario::deliver(raft::NodeId only, bool quiet) {
    // Messages queued before this call; what their handling sends waits for the next one.
    std::deque<raft::Message> now;
    std::deque<raft::Message> keep;
    for (auto& m : queue_)
        (only == raft::kNoNode || m.to == only ? now : keep).push_back(std::move(m));
    queue_ = std::move(keep);
    std::vector<SimNode*> fed;
    const bool was_quiet = quiet_;
    quiet_ = quiet_ || quiet;
    for (const auto& m : now) {
        SimNode* n = node(std::to_string(m.to));
        if (!n || isolated_.count(m.from) || isolated_.count(m.to)) continue;
        n->emit("recv " + raft::describe(m));
        (void)n->node->step(m);
        if (std::find(fed.begin(), fed.end(), n) == fed.end()) fed.push_back(n);
    }
    // As the daemon: one process() per node once the iteration's messages were stepped.
    for (SimNode* n : fed)
        n->pipe->process();
    quiet_ = was_quiet;
    return "";
}

std::string PipelineScenario::stabilize() {
    for (int round = 0; round < 1000; ++round) {
        bool moved = !queue_.empty();
        deliver(raft::kNoNode, false);
        for (auto& [id, n] : nodes_) {
            while (!n->worker.empty() && n->ended.empty()) {
                PersistJob job = std::move(n->worker.front());
                n->worker.pop_front();
                n->emit("synced: " + describe(job));
                n->pipe->persisted(n->apply(job));
                moved = true;
            }
        }
        if (!moved) return "";
    }
    return "stabilize did not settle in 1000 rounds";
}

std::string PipelineScenario::exec(const std::vector<std::string>& args) {
    if (args.empty()) return "empty command";
    const std::string& cmd = args[0];
    auto need = [&](size_t i) -> SimNode* { return i < args.size() ? node(args[i]) : nullptr; };

    if (cmd == "nodes") {
        uint64_t n = 0;
        if (!nodes_.empty()) return "nodes exist already";
        if (args.size() != 2 || !parse_u64(args[1], n) || n == 0 || n > 7)
            return "usage: nodes N (1..7)";
        std::vector<raft::Member> members;
        for (uint64_t id = 1; id <= n; ++id)
            members.push_back({id, "n" + std::to_string(id) + ":7000"});
        raft::Config base;
        base.election_tick = 10;
        base.heartbeat_tick = 1;
        base.pre_vote = false;
        base.check_quorum = false;
        for (uint64_t id = 1; id <= n; ++id) {
            auto sn = std::make_unique<SimNode>(*this, id);
            // A bootstrapped member, as NodeHost::open writes it.
            (void)sn->storage.append({raft::bootstrap_entry(members)});
            sn->storage.set_hard_state(raft::HardState{1, raft::kNoNode, 1});
            if (Status st = sn->start(base); !st) return st.to_string();
            nodes_[id] = std::move(sn);
        }
        return "";
    }
    if (nodes_.empty()) return "no nodes yet: start with `nodes N`";
    if (cmd == "stabilize") {
        const bool quiet = args.size() >= 2 && args[1] == "quiet";
        quiet_ = quiet;
        return stabilize();
    }
    if (cmd == "deliver") {
        raft::NodeId only = raft::kNoNode;
        if (args.size() >= 2) {
            SimNode* n = need(1);
            if (!n) return "usage: deliver [ID]";
            only = n->id;
        }
        return deliver(only, false);
    }
    if (cmd == "queue") {
        for (const auto& m : queue_)
            out_ += raft::describe(m) + "\n";
        return "";
    }
    SimNode* n = need(1);
    if (!n) return "argument 1 must be a node id";
    if (cmd == "elect") {
        // Setup shortcut: campaign, then everything settles without a trace.
        quiet_ = true;
        if (Status st = n->node->campaign(); !st) return st.to_string();
        n->pipe->process();
        std::string err = stabilize();
        quiet_ = false;
        if (!err.empty()) return err;
        out_ += std::to_string(n->id) + ": " + std::string(raft::role_name(n->node->role())) +
                " at term " + std::to_string(n->node->term()) + "\n";
        return "";
    }
    if (cmd == "campaign") {
        if (Status st = n->node->campaign(); !st) return st.to_string();
        n->pipe->process();
        return "";
    }
    if (cmd == "propose") {
        if (args.size() != 3) return "usage: propose ID DATA";
        auto r = n->node->propose(raft::Payload(args[2]));
        if (!r) return r.status().to_string();
        n->proposals.push_back(*r);
        n->emit("proposed " + std::to_string(r->term) + "/" + std::to_string(r->index));
        n->pipe->process();
        return "";
    }
    if (cmd == "read-index") {
        if (args.size() != 3) return "usage: read-index ID CTX";
        if (Status st = n->node->read_index(args[2]); !st) return st.to_string();
        n->pipe->process();
        return "";
    }
    if (cmd == "tick") {
        uint64_t k = 1;
        if (args.size() >= 3 && !parse_u64(args[2], k)) return "usage: tick ID [N]";
        for (uint64_t i = 0; i < k; ++i)
            n->pipe->tick();
        return "";
    }
    if (cmd == "sync" || cmd == "fail-sync") {
        uint64_t k = 1;
        if (args.size() >= 3 && !parse_u64(args[2], k)) return "usage: " + cmd + " ID [N]";
        for (uint64_t i = 0; i < k; ++i) {
            if (n->worker.empty()) return "node " + args[1] + " has no job on its storage thread";
            PersistJob job = std::move(n->worker.front());
            n->worker.pop_front();
            if (cmd == "fail-sync") {
                n->emit("sync failed: " + describe(job));
                n->pipe->persisted(Status::io_error("fdatasync: injected failure"));
            } else {
                n->emit("synced: " + describe(job));
                n->pipe->persisted(n->apply(job));
            }
        }
        return "";
    }
    if (cmd == "storage-busy" || cmd == "client-output") {
        bool v = false;
        if (args.size() != 3 || !parse_bool(args[2], v)) return "usage: " + cmd + " ID true|false";
        (cmd == "storage-busy" ? n->busy : n->output) = v;
        return "";
    }
    if (cmd == "drop") {
        std::deque<raft::Message> keep;
        for (auto& m : queue_)
            if (m.to != n->id) keep.push_back(std::move(m));
        queue_ = std::move(keep);
        return "";
    }
    if (cmd == "isolate" || cmd == "heal") {
        if (cmd == "isolate")
            isolated_.insert(n->id);
        else
            isolated_.erase(n->id);
        return "";
    }
    if (cmd == "unwritten") {
        auto hs = n->pipe->take_unwritten_hard_state();
        out_ += std::to_string(n->id) + ": unwritten " + (hs ? hs_text(*hs) : "none") + "\n";
        return "";
    }
    if (cmd == "stop") {
        n->pipe->stop();
        return "";
    }
    if (cmd == "compact") {
        // The application's snapshot at INDEX (durable), and the log compacted up to it.
        uint64_t i = 0;
        if (args.size() != 3 || !parse_u64(args[2], i)) return "usage: compact ID INDEX";
        auto meta = n->node->snapshot_meta(i);
        if (!meta) return meta.status().to_string();
        if (Status st = n->storage.create_snapshot(*meta, "state@" + std::to_string(i)); !st)
            return st.to_string();
        if (Status st = n->storage.compact(i); !st) return st.to_string();
        return "";
    }
    if (cmd == "status") {
        const raft::HardState hs = n->storage.hard_state();
        std::string s = std::string(raft::role_name(n->node->role())) + " term " +
                        std::to_string(n->node->term()) + " delivered " +
                        std::to_string(n->pipe->delivered()) + "; durable: log " +
                        std::to_string(n->storage.first_index()) + ".." +
                        std::to_string(n->storage.last_index()) + " " + hs_text(hs);
        if (n->storage.snapshot_meta().index > 0)
            s += " snapshot " + std::to_string(n->storage.snapshot_meta().index);
        s += "; storage thread: " + std::to_string(n->worker.size()) + " job(s)";
        if (!n->ended.empty()) s += "; " + n->ended;
        out_ += std::to_string(n->id) + ": " + s + "\n";
        return "";
    }
    return "unknown command " + cmd;
}

}  // namespace raftd::daemon::testing
