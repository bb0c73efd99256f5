#include "raft/testing/scenario.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "raft/confchange_codec.h"
#include "raft/testing/fixture.h"

namespace raftd::raft::testing {

// ---- files ----------------------------------------------------------------------------------

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::string cur;
    for (char c : text) {
        if (c == '\n') {
            lines.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) lines.push_back(cur);
    return lines;
}

bool is_blank(const std::string& s) {
    return s.find_first_not_of(" \t\r") == std::string::npos;
}

constexpr const char* kProductionSeparator = "---- production";

}  // namespace

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w)
        out.push_back(w);
    return out;
}

Result<ScenarioFile> parse_scenario(const std::string& text) {
    ScenarioFile f;
    std::vector<std::string> lines = split_lines(text);
    std::vector<std::string> pending;
    size_t i = 0;
    while (i < lines.size()) {
        const std::string& l = lines[i];
        if (is_blank(l) || l[0] == '#') {
            pending.push_back(l);
            ++i;
            continue;
        }
        ScenarioBlock b;
        b.comments = std::move(pending);
        pending.clear();
        b.command = l;
        b.line = static_cast<int>(i) + 1;
        ++i;
        if (i >= lines.size() || lines[i] != "----") {
            return Status::invalid_argument("line " + std::to_string(b.line) +
                                            ": command without a \"----\" line after it");
        }
        ++i;
        // The expected output ends at a blank line, or at a production section that ends
        // at a blank line.
        auto read_output = [&] {
            std::string out;
            while (i < lines.size() && !lines[i].empty() && lines[i] != kProductionSeparator) {
                if (!out.empty()) out += "\n";
                out += lines[i];
                ++i;
            }
            return out;
        };
        b.expected = read_output();
        if (i < lines.size() && lines[i] == kProductionSeparator) {
            ++i;
            b.expected_production = read_output();
        }
        f.blocks.push_back(std::move(b));
    }
    f.trailing_comments = std::move(pending);
    return f;
}

std::string render_scenario(const ScenarioFile& f, const std::vector<std::string>& outputs,
                            const std::vector<std::string>* production_outputs) {
    std::string s;
    for (size_t k = 0; k < f.blocks.size(); ++k) {
        const ScenarioBlock& b = f.blocks[k];
        for (const std::string& c : b.comments)
            s += c + "\n";
        s += b.command + "\n----\n";
        const std::string& out = k < outputs.size() ? outputs[k] : b.expected;
        s += out + "\n";
        std::optional<std::string> prod = b.expected_production;
        if (production_outputs != nullptr && k < production_outputs->size()) {
            prod = (*production_outputs)[k];
            if (*prod == out) prod.reset();
        }
        if (prod) s += std::string(kProductionSeparator) + "\n" + *prod + "\n";
        // A blank line ends the output; the next block's comments supply their own.
        if (k + 1 < f.blocks.size() &&
            (f.blocks[k + 1].comments.empty() || !is_blank(f.blocks[k + 1].comments.front()))) {
            s += "\n";
        }
    }
    for (const std::string& c : f.trailing_comments)
        s += c + "\n";
    return s;
}

std::string diff_lines(const std::string& expected, const std::string& actual) {
    std::vector<std::string> a = split_lines(expected), b = split_lines(actual);
    // Longest common subsequence table; scenario outputs are small.
    std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
    for (size_t i = a.size(); i-- > 0;) {
        for (size_t j = b.size(); j-- > 0;) {
            lcs[i][j] =
                a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
        }
    }
    std::string out;
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            out += "  " + a[i] + "\n";
            ++i;
            ++j;
        } else if (j < b.size() && (i == a.size() || lcs[i][j + 1] >= lcs[i + 1][j])) {
            out += "+ " + b[j] + "\n";
            ++j;
        } else {
            out += "- " + a[i] + "\n";
            ++i;
        }
    }
    return out;
}

// ---- the interpreter ------------------------------------------------------------------------

// The fixtures' deterministic configuration (each node gets its id when it is added), with
// the seed the scripts' expected output was recorded with; the production profile turns on
// the batching and quiet commit notices that raftd runs with.
ScenarioRunner::ScenarioRunner(ScenarioProfile profile) : base_(test_config(kNoNode)) {
    const bool production = profile == ScenarioProfile::kProduction;
    base_.batch_appends = production;
    base_.quiet_commit_notices = production;
    base_.seed = 1;
}

void ScenarioRunner::emit(const std::string& s) {
    out_ += s;
    out_ += "\n";
}

std::string ScenarioRunner::run(const std::string& command_line) {
    out_.clear();
    std::vector<std::string> args = split_words(command_line);
    std::string err = exec(args);
    if (!err.empty()) emit("error: " + err);
    std::string s = out_;
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    return s.empty() ? "ok" : s;
}

bool parse_u64(const std::string& s, uint64_t& v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    v = std::stoull(s);
    return true;
}

bool parse_bool(const std::string& s, bool& v) {
    if (s == "true") {
        v = true;
        return true;
    }
    if (s == "false") {
        v = false;
        return true;
    }
    return false;
}

NodeId ScenarioRunner::node_arg(const std::vector<std::string>& args, size_t i) const {
    uint64_t v = 0;
    if (i >= args.size() || !parse_u64(args[i], v)) return kNoNode;
    if (!cluster_ || !cluster_->has(v)) return kNoNode;
    return v;
}

std::vector<NodeId> ScenarioRunner::targets(const std::vector<std::string>& args,
                                            size_t from) const {
    if (!cluster_) return {};
    if (args.size() <= from || args[from] == "all") return cluster_->ids();
    std::vector<NodeId> out;
    for (size_t i = from; i < args.size(); ++i) {
        NodeId id = node_arg(args, i);
        if (id == kNoNode) return {};
        out.push_back(id);
    }
    return out;
}

Status ScenarioRunner::add_nodes(const std::vector<std::string>& args) {
    uint64_t n = 0;
    if (args.size() < 2 || !parse_u64(args[1], n) || n == 0) {
        return Status::invalid_argument("usage: add-nodes N [option=value ...]");
    }
    Config cfg = base_;
    for (size_t i = 2; i < args.size(); ++i) {
        auto eq = args[i].find('=');
        if (eq == std::string::npos) return Status::invalid_argument("bad option " + args[i]);
        std::string k = args[i].substr(0, eq), v = args[i].substr(eq + 1);
        uint64_t u = 0;
        bool b = false;
        bool ok = true;
        if (k == "pre-vote") {
            ok = parse_bool(v, b);
            cfg.pre_vote = b;
        } else if (k == "check-quorum") {
            ok = parse_bool(v, b);
            cfg.check_quorum = b;
        } else if (k == "batch-appends") {
            ok = parse_bool(v, b);
            cfg.batch_appends = b;
        } else if (k == "quiet-commit-notices") {
            ok = parse_bool(v, b);
            cfg.quiet_commit_notices = b;
        } else if (k == "lease-read") {
            ok = parse_bool(v, b);
            cfg.lease_read = b;
        } else if (k == "election") {
            ok = parse_u64(v, u);
            cfg.election_tick = static_cast<int>(u);
        } else if (k == "heartbeat") {
            ok = parse_u64(v, u);
            cfg.heartbeat_tick = static_cast<int>(u);
        } else if (k == "max-inflight") {
            ok = parse_u64(v, u);
            cfg.max_inflight_msgs = u;
        } else if (k == "max-inflight-bytes") {
            ok = parse_u64(v, u);
            cfg.max_inflight_bytes = u;
        } else if (k == "max-size-per-msg") {
            ok = parse_u64(v, u);
            cfg.max_size_per_msg = u;
        } else if (k == "max-uncommitted-bytes") {
            ok = parse_u64(v, u);
            cfg.max_uncommitted_bytes = u;
        } else if (k == "snapshot-chunk") {
            ok = parse_u64(v, u);
            cfg.max_snapshot_chunk_bytes = u;
        } else {
            return Status::invalid_argument("unknown option " + k);
        }
        if (!ok) return Status::invalid_argument("bad value for " + k);
    }
    Config probe = cfg;
    probe.id = next_id_;  // each peer gets its own id; validate the rest
    if (Status st = probe.validate(); !st) return st;
    std::vector<NodeId> ids;
    for (uint64_t k = 0; k < n; ++k)
        ids.push_back(next_id_++);
    if (!cluster_) {
        // The first nodes form the cluster: bootstrapped voters.
        cluster_ = std::make_unique<Cluster>(cfg);
        Status st = cluster_->bootstrap(ids);  // bootstrap Readys are not part of the story
        cluster_->trace = [this](const std::string& s) { emit(s); };
        return st;
    }
    // Later nodes start empty and join through a configuration change.
    cluster_->base() = cfg;
    for (NodeId id : ids) {
        if (Status st = cluster_->add_empty(id); !st) return st;
    }
    return Status::ok();
}

std::string ScenarioRunner::describe_log(NodeId id) {
    Peer& p = cluster_->peer(id);
    std::string s = std::to_string(id) + ":";
    auto entry_line = [](const Entry& e) {
        std::string l = describe(e);
        if (e.type == EntryType::kConfig) {
            auto cc = decode_conf_change(e.data.view());
            l += cc ? " " + describe(*cc) : " <undecodable>";
        }
        return l;
    };
    if (!p.up()) {
        const MemoryStorage& st = p.storage();
        HardState hs = st.hard_state();
        s += " down; durable: term=" + std::to_string(hs.term) +
             " vote=" + std::to_string(hs.vote) + " commit=" + std::to_string(hs.commit);
        SnapshotMeta snap = st.snapshot_meta();
        if (snap.index > 0) {
            s += "\n  snapshot " + std::to_string(snap.term) + "/" + std::to_string(snap.index) +
                 " " + describe(snap.conf);
        }
        if (st.last_index() >= st.first_index()) {
            auto ents = st.entries(st.first_index(), st.last_index() + 1, UINT64_MAX);
            if (ents) {
                for (const Entry& e : *ents)
                    s += "\n  " + entry_line(e);
            }
        }
        return s;
    }
    const RaftLog& log = p.node().raft().log();
    s += " commit=" + std::to_string(log.committed()) +
         " applied=" + std::to_string(p.applied_index());
    if (log.durable_last() < log.last_index()) {
        s += " durable=" + std::to_string(log.durable_last());
    }
    SnapshotMeta snap = p.storage().snapshot_meta();
    if (snap.index > 0) {
        s += "\n  snapshot " + std::to_string(snap.term) + "/" + std::to_string(snap.index) + " " +
             describe(snap.conf);
    }
    if (log.last_index() >= log.first_index()) {
        auto ents = log.slice(log.first_index(), log.last_index() + 1, 0);
        if (!ents) return s + "\n  <" + ents.status().to_string() + ">";
        for (const Entry& e : *ents)
            s += "\n  " + entry_line(e);
    }
    return s;
}

std::string ScenarioRunner::exec(const std::vector<std::string>& args) {
    if (args.empty()) return "empty command";
    const std::string& cmd = args[0];
    if (cmd == "add-nodes") {
        Status st = add_nodes(args);
        return st ? "" : st.to_string();
    }
    if (!cluster_) return "no nodes yet: start with add-nodes";
    Cluster& c = *cluster_;
    auto need_node = [&](size_t i, NodeId& id) -> std::string {
        id = node_arg(args, i);
        if (id == kNoNode) return "argument " + std::to_string(i) + " must be a node id";
        return "";
    };
    auto up = [&](NodeId id) -> std::string {
        return c.peer(id).up() ? "" : "node " + std::to_string(id) + " is down";
    };
    auto show = [&](const Status& st) { return st ? std::string() : st.to_string(); };
    NodeId id = kNoNode;

    if (cmd == "campaign") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        return show(c.peer(id).node().campaign());
    }
    if (cmd == "tick" || cmd == "tick-heartbeat" || cmd == "tick-election") {
        // tick <id|all> [n]; tick-heartbeat / tick-election <id|all>: as many ticks as one
        // heartbeat interval / one (unrandomized) election timeout.
        std::vector<std::string> rest(args.begin(), args.end());
        uint64_t n = 1;
        if (cmd == "tick" && rest.size() >= 3 && parse_u64(rest.back(), n)) rest.pop_back();
        if (cmd == "tick-heartbeat") n = static_cast<uint64_t>(c.base().heartbeat_tick);
        if (cmd == "tick-election") n = static_cast<uint64_t>(c.base().election_tick);
        std::vector<NodeId> ids = targets(rest, 1);
        if (ids.empty()) return "usage: " + cmd + " <id|all>" + (cmd == "tick" ? " [n]" : "");
        for (uint64_t k = 0; k < n; ++k) {
            for (NodeId t : ids)
                c.tick(t);
        }
        return "";
    }
    if (cmd == "run") {
        // run <n> [quiet]: n rounds of "tick every running node once, then stabilize", the
        // way time passes in a live cluster. quiet: print nothing.
        uint64_t n = 0;
        if (args.size() < 2 || !parse_u64(args[1], n)) return "usage: run <n> [quiet]";
        bool quiet = args.size() >= 3 && args[2] == "quiet";
        auto trace = std::move(c.trace);
        if (!quiet) c.trace = trace;
        for (uint64_t k = 0; k < n; ++k) {
            for (NodeId t : c.ids())
                c.tick(t);
            c.stabilize();
        }
        c.trace = std::move(trace);
        return "";
    }
    if (cmd == "propose") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        if (args.size() < 3) return "usage: propose <id> <data>";
        auto r = c.peer(id).node().propose(Payload(args[2]));
        if (!r) return r.status().to_string();
        emit("proposed at " + std::to_string(r->term) + "/" + std::to_string(r->index));
        return "";
    }
    if (cmd == "conf-change") {
        // conf-change <id> v4 l5 r3 [joint|explicit]; "conf-change <id> leave" leaves joint.
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        ConfChange cc;
        for (size_t i = 2; i < args.size(); ++i) {
            const std::string& a = args[i];
            if (a == "joint") {
                cc.transition = ConfTransition::kJointImplicit;
            } else if (a == "explicit") {
                cc.transition = ConfTransition::kJointExplicit;
            } else if (a == "leave") {
                cc.changes.clear();
            } else if (a.size() >= 2 && (a[0] == 'v' || a[0] == 'l' || a[0] == 'r')) {
                uint64_t n = 0;
                if (!parse_u64(a.substr(1), n)) return "bad change " + a;
                ConfChangeSingle s;
                s.type = a[0] == 'v'   ? ConfChangeType::kAddNode
                         : a[0] == 'l' ? ConfChangeType::kAddLearner
                                       : ConfChangeType::kRemoveNode;
                s.node = n;
                if (s.type != ConfChangeType::kRemoveNode) s.addr = "n" + a.substr(1) + ":7000";
                cc.changes.push_back(s);
            } else {
                return "bad change " + a + " (use vN, lN, rN, joint, explicit, leave)";
            }
        }
        auto r = c.peer(id).node().propose_conf_change(cc);
        if (!r) return r.status().to_string();
        emit("proposed " + describe(cc) + " at " + std::to_string(r->term) + "/" +
             std::to_string(r->index));
        return "";
    }
    if (cmd == "transfer-leader") {
        NodeId to = kNoNode;
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = need_node(2, to); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        return show(c.peer(id).node().transfer_leader(to));
    }
    if (cmd == "read-index") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        if (args.size() < 3) return "usage: read-index <id> <context>";
        return show(c.peer(id).node().read_index(args[2]));
    }
    if (cmd == "reads") {
        // The read states a node's application received so far (and forgets them).
        for (NodeId t : targets(args, 1)) {
            if (!c.peer(t).up()) continue;
            auto& rs = c.peer(t).read_states();
            std::string s = std::to_string(t) + ":";
            if (rs.empty()) s += " none";
            for (const ReadState& r : rs)
                s += " " + r.context + "@" + std::to_string(r.index);
            rs.clear();
            emit(s);
        }
        return "";
    }
    if (cmd == "process-ready") {
        std::vector<NodeId> ids = targets(args, 1);
        if (ids.empty()) return "usage: process-ready <id|all>...";
        for (NodeId t : ids) {
            while (c.peer(t).up() && c.process_ready(t)) {
            }
        }
        return "";
    }
    if (cmd == "ready") {
        // Take one Ready and send its immediate messages, but do not persist it yet.
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        std::vector<Message> out;
        if (!c.peer(id).take_ready(out)) return "node " + std::to_string(id) + " has no Ready";
        emit(describe_ready(id, *c.peer(id).pending()));
        c.send(out);
        return "";
    }
    if (cmd == "persist") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        if (!c.peer(id).has_pending()) return "node " + std::to_string(id) + " has no Ready taken";
        std::vector<Message> out;
        if (Status st = c.peer(id).persist(out); !st) return st.to_string();
        emit("> " + std::to_string(id) + " persisted and advanced");
        for (const Message& m : out)
            emit("  send: " + describe(m));
        c.send(out);
        return "";
    }
    if (cmd == "deliver") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        uint64_t n = SIZE_MAX;
        if (args.size() >= 3 && !parse_u64(args[2], n)) return "usage: deliver <id> [count]";
        c.deliver_to(id, n);
        return "";
    }
    if (cmd == "drop") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        c.drop_to(id);
        return "";
    }
    if (cmd == "queue") {
        if (c.queue().empty()) emit("empty");
        for (const Message& m : c.queue())
            emit(describe(m));
        return "";
    }
    if (cmd == "stabilize") {
        std::vector<NodeId> ids = targets(args, 1);
        if (ids.empty()) return "usage: stabilize [id...]";
        if (ids.size() == c.ids().size()) {
            c.stabilize();
            return "";
        }
        // Only these nodes take part; messages to the others stay queued.
        for (int round = 0; round < 10000; ++round) {
            bool moved = false;
            for (NodeId t : ids) {
                while (c.peer(t).up() && c.process_ready(t))
                    moved = true;
            }
            for (NodeId t : ids) {
                if (c.deliver_to(t) > 0) moved = true;
            }
            if (!moved) break;
        }
        return "";
    }
    if (cmd == "partition") {
        // partition (1 2) (3 4 5): links only within a group.
        std::string joined;
        for (size_t i = 1; i < args.size(); ++i)
            joined += args[i] + " ";
        std::vector<std::set<NodeId>> groups;
        std::set<NodeId>* cur = nullptr;
        std::string num;
        auto flush = [&]() -> bool {
            if (num.empty()) return true;
            uint64_t v = 0;
            if (!parse_u64(num, v) || cur == nullptr) return false;
            cur->insert(v);
            num.clear();
            return true;
        };
        for (char ch : joined) {
            if (ch == '(') {
                groups.emplace_back();
                cur = &groups.back();
            } else if (ch == ')' || ch == ' ') {
                if (!flush()) return "usage: partition (1 2) (3)";
                if (ch == ')') cur = nullptr;
            } else {
                num += ch;
            }
        }
        if (groups.empty()) return "usage: partition (1 2) (3)";
        c.partition(groups);
        return "";
    }
    if (cmd == "isolate") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        c.isolate(id);
        return "";
    }
    if (cmd == "cut") {
        NodeId to = kNoNode;
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = need_node(2, to); !e.empty()) return e;
        c.cut(id, to);
        return "";
    }
    if (cmd == "heal") {
        c.heal();
        return "";
    }
    if (cmd == "crash" || cmd == "crash-mid-persist") {
        // crash: everything not persisted is lost, as are messages on their way to it.
        // crash-mid-persist: the outstanding Ready's snapshot and entries reached the disk,
        // its hard state did not.
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        if (cmd == "crash") {
            c.crash(id);
        } else {
            c.peer(id).persist_partially_then_crash();
        }
        c.drop_to(id);
        return "";
    }
    if (cmd == "restart") {
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (c.peer(id).up()) return "node " + std::to_string(id) + " is up";
        return show(c.restart(id));
    }
    if (cmd == "compact") {
        // compact <id> <index|applied>: snapshot the application at index, drop the log to it.
        if (auto e = need_node(1, id); !e.empty()) return e;
        if (auto e = up(id); !e.empty()) return e;
        uint64_t i = 0;
        if (args.size() >= 3 && args[2] == "applied") {
            i = c.peer(id).applied_index();
        } else if (args.size() < 3 || !parse_u64(args[2], i)) {
            return "usage: compact <id> <index|applied>";
        }
        if (Status st = c.peer(id).compact(i); !st) return st.to_string();
        emit("snapshot at " + std::to_string(i) + "; log starts at " +
             std::to_string(c.peer(id).storage().first_index()));
        return "";
    }
    if (cmd == "status") {
        for (NodeId t : targets(args, 1)) {
            if (!c.peer(t).up()) {
                emit(std::to_string(t) + ": down");
            } else {
                emit(describe_status(c.peer(t).node()));
            }
        }
        return "";
    }
    if (cmd == "log") {
        for (NodeId t : targets(args, 1))
            emit(describe_log(t));
        return "";
    }
    if (cmd == "applied") {
        // The data entries each application applied, in order.
        for (NodeId t : targets(args, 1)) {
            std::string s = std::to_string(t) + ":";
            for (const Entry& e : c.peer(t).applied()) {
                if (e.type == EntryType::kData) s += " " + std::string(e.data.view());
            }
            emit(s);
        }
        return "";
    }
    return "unknown command " + cmd;
}

std::vector<std::filesystem::path> scenario_files(const std::string& suite) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    fs::path dir, p = fs::current_path();
    for (int i = 0; i < 8 && dir.empty(); ++i) {
        fs::path d = p / "tests" / "scenarios" / suite;
        if (fs::is_directory(d)) dir = d;
        if (!p.has_parent_path() || p.parent_path() == p) break;
        p = p.parent_path();
    }
    if (dir.empty()) return files;
    const char* only = std::getenv("RAFT_SCENARIO");
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".txt") continue;
        if (only != nullptr && e.path().stem() != only) continue;
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

bool scenario_rewrite_requested() {
    const char* env = std::getenv("RAFT_SCENARIO_REWRITE");
    if (env != nullptr && std::string(env) == "1") return true;
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string arg;
    while (std::getline(in, arg, '\0')) {
        if (arg == "--rewrite") return true;
    }
    return false;
}

}  // namespace raftd::raft::testing
