// raftctl: the operator's command-line client for one raftd node, built on <raftd/client.h>.
// docs/raftctl.md is its manual: commands, output formats and exit codes (which scripts rely
// on, so they never change meaning).
//
// Owns: argument parsing, output formatting and the mapping from errors to exit codes.
// Never: retry a request (a retried proposal could commit twice) or talk anything but the
// public protocol.
#include <raftd/client.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace rc = raftd::client;

namespace {

// Exit codes (docs/raftctl.md).
enum Exit : int {
    kOk = 0,
    kFailed = 1,         // INTERNAL, SHUTTING_DOWN, an unknown code
    kUsage = 2,          // bad command line
    kConnection = 3,     // cannot connect, or the connection was lost
    kUnavailable = 4,    // not done: no leader (safe to retry)
    kIndeterminate = 5,  // may or may not have been done
    kTimeout = 6,
    kBusy = 7,
    kNotFound = 8,
    kRefused = 9,  // BAD_REQUEST, TOO_LARGE, UNKNOWN_OP, BAD_FRAME: the request was invalid
};

int exit_for(const rc::Error& e) {
    switch (e.code) {
        case rc::ErrorCode::kConnection:
            return kConnection;
        case rc::ErrorCode::kUnavailable:
            return kUnavailable;
        case rc::ErrorCode::kIndeterminate:
            return kIndeterminate;
        case rc::ErrorCode::kTimeout:
            return kTimeout;
        case rc::ErrorCode::kBusy:
            return kBusy;
        case rc::ErrorCode::kNotFound:
            return kNotFound;
        case rc::ErrorCode::kBadRequest:
        case rc::ErrorCode::kTooLarge:
        case rc::ErrorCode::kUnknownOp:
        case rc::ErrorCode::kBadFrame:
            return kRefused;
        default:
            return kFailed;
    }
}

int fail(const rc::Error& e) {
    std::fprintf(stderr, "raftctl: %s\n", e.to_string().c_str());
    return exit_for(e);
}

std::string json_str(std::string_view s) {
    std::string o = "\"";
    for (unsigned char ch : s) {
        switch (ch) {
            case '"':
                o += "\\\"";
                break;
            case '\\':
                o += "\\\\";
                break;
            case '\n':
                o += "\\n";
                break;
            case '\t':
                o += "\\t";
                break;
            default:
                // Bytes >= 0x80 pass through: callers give UTF-8 text (is_text below).
                if (ch < 0x20 || ch == 0x7f) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\u%04x", ch);
                    o += b;
                } else {
                    o += static_cast<char>(ch);
                }
        }
    }
    return o + "\"";
}

// Text: valid UTF-8 without control characters (C0, DEL, C1), so it prints as one line.
bool is_text(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            ++i;
            continue;
        }
        const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (n == 0 || c > 0xf4 || i + n > s.size()) return false;
        uint32_t cp = c & (0x7f >> n);
        for (size_t k = 1; k < n; ++k) {
            const unsigned char cc = s[i + k];
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls.
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += n;
    }
    return true;
}

std::string hex(std::string_view s) {
    static const char* d = "0123456789abcdef";
    std::string o;
    for (unsigned char ch : s) {
        o += d[ch >> 4];
        o += d[ch & 15];
    }
    return o;
}

std::string members_json(const rc::Members& m) {
    std::string o = "[";
    for (size_t i = 0; i < m.members.size(); ++i) {
        const rc::Member& x = m.members[i];
        if (i) o += ",";
        o += "{\"node\":" + std::to_string(x.node) + ",\"addr\":" + json_str(x.addr) +
             ",\"voter\":" + (x.voter ? "true" : "false");
        if (m.joint) o += std::string(",\"outgoing\":") + (x.outgoing ? "true" : "false");
        if (x.progress)
            o += ",\"progress\":{\"match\":" + std::to_string(x.progress->match) +
                 ",\"next\":" + std::to_string(x.progress->next) +
                 ",\"state\":" + json_str(x.progress->state) + "}";
        o += "}";
    }
    return o + "]";
}

std::string id_list(const std::vector<uint64_t>& ids) {
    std::string o;
    for (uint64_t id : ids)
        o += (o.empty() ? "" : ",") + std::to_string(id);
    return o;
}

// "voters=1,2,3 learners=4", plus "outgoing=1,2,5" (the outgoing configuration's voters)
// while joint; an empty learner list is left out.
std::string members_line(const rc::Members& m) {
    std::vector<uint64_t> voters, learners, outgoing;
    for (const rc::Member& x : m.members) {
        (x.voter ? voters : learners).push_back(x.node);
        if (m.joint && x.outgoing) outgoing.push_back(x.node);
    }
    std::string o = "voters=" + id_list(voters);
    if (!learners.empty()) o += " learners=" + id_list(learners);
    if (m.joint) o += " outgoing=" + id_list(outgoing);
    return o;
}

// One `tail` entry line: INDEX TERM TYPE[ DATA]. Config entries show their configuration;
// data is shown as it is when it is text not starting with "0x", else as 0x and hex (so a
// DATA beginning with 0x is always hex); --hex: always bare hex.
std::string entry_line(const rc::Event& e, bool as_hex) {
    std::string o = std::to_string(e.index) + " " + std::to_string(e.term) + " " + e.type;
    std::string d;
    if (e.type == "config" && e.members)
        d = members_line(*e.members);
    else if (as_hex)
        d = hex(e.data);
    else if (is_text(e.data) && e.data.rfind("0x", 0) != 0)
        d = e.data;
    else
        d = "0x" + hex(e.data);
    if (!d.empty()) o += " " + d;
    return o;
}

// The same as one JSON object: "data" (text) or "hex"; config entries carry "members" and
// "joint" instead.
std::string entry_json(const rc::Event& e, bool as_hex) {
    std::string o = "{\"ev\":\"entry\",\"index\":" + std::to_string(e.index) +
                    ",\"term\":" + std::to_string(e.term) + ",\"type\":" + json_str(e.type);
    if (e.type == "config" && e.members)
        o += ",\"members\":" + members_json(*e.members) +
             ",\"joint\":" + (e.members->joint ? "true" : "false");
    else if (!as_hex && is_text(e.data))
        o += ",\"data\":" + json_str(e.data);
    else
        o += ",\"hex\":" + json_str(hex(e.data));
    return o + "}";
}

// `health`: one node's answer. Healthy: status within the deadline names a leader, and a
// read_index (the leader confirmed by a quorum) completes within the deadline too.
struct Health {
    std::string socket;
    bool healthy = false;
    std::optional<rc::NodeStatus> status;
    std::optional<rc::Error> error;
    double took_ms = 0;
};

Health check_health(const std::string& socket, int deadline_ms) {
    Health h;
    h.socket = socket;
    const auto t0 = std::chrono::steady_clock::now();
    auto done = [&](std::optional<rc::Error> e) {
        h.took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
        if (!e && deadline_ms > 0 && h.took_ms > deadline_ms)
            e = rc::make_error(
                rc::ErrorCode::kTimeout,
                "answered after the " + std::to_string(deadline_ms) + " ms deadline");
        h.error = std::move(e);
        h.healthy = !h.error;
        return h;
    };
    rc::Options o;
    o.timeout_ms = deadline_ms;
    o.name = "raftctl";
    auto c = rc::Client::connect(socket, o);
    if (!c) return done(c.error());
    auto st = (*c)->status();
    if (!st) return done(st.error());
    h.status = *st;
    if (st->leader == 0)
        return done(rc::make_error(
            rc::ErrorCode::kUnavailable,
            "no leader known (role " + st->role + ", term " + std::to_string(st->term) + ")"));
    auto ri = (*c)->read_index();
    if (!ri) return done(ri.error());
    return done(std::nullopt);
}

std::string health_line(const Health& h, bool json) {
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", h.took_ms);
    if (json) {
        std::string o =
            "{\"socket\":" + json_str(h.socket) + ",\"healthy\":" + (h.healthy ? "true" : "false");
        if (h.status)
            o += ",\"node\":" + std::to_string(h.status->node_id) +
                 ",\"leader\":" + std::to_string(h.status->leader) +
                 ",\"term\":" + std::to_string(h.status->term);
        if (h.error)
            o += ",\"error\":{\"code\":" + json_str(h.error->code_name) +
                 ",\"message\":" + json_str(h.error->message) + "}";
        return o + ",\"took_ms\":" + took + "}";
    }
    std::string o = h.socket + (h.healthy ? " is healthy: " : " is unhealthy: ");
    if (h.error) o += h.error->to_string() + ", ";
    if (h.status && h.healthy)
        o += "node " + std::to_string(h.status->node_id) + ", leader " +
             std::to_string(h.status->leader) + ", term " + std::to_string(h.status->term) + ", ";
    return o + "took " + took + "ms";
}

// The client sockets named by raftd configuration files (their `socket`, default
// ./raftd.sock as in raftd), in order. Error text when a file cannot be used.
std::optional<std::string> sockets_from_configs(const std::vector<std::string>& files,
                                                std::vector<std::string>& out) {
    for (const std::string& f : files) {
        try {
            toml::table t = toml::parse_file(f);
            auto v = t["socket"];
            if (v && !v.is_string()) return f + ": socket is not a string";
            out.push_back(v.value_or(std::string("./raftd.sock")));
        } catch (const toml::parse_error& e) {
            return f + ": " + std::string(e.description());
        }
    }
    return std::nullopt;
}

void print_members_table(const rc::Members& m) {
    std::printf("%-6s %-24s %-8s %s\n", "NODE", "ADDR", "ROLE", "PROGRESS");
    for (const rc::Member& x : m.members) {
        std::string role = x.voter ? "voter" : "learner";
        if (m.joint && x.outgoing) role += "*";
        std::string prog = "-";
        if (x.progress)
            prog = "match=" + std::to_string(x.progress->match) +
                   " next=" + std::to_string(x.progress->next) + " " + x.progress->state;
        std::printf("%-6" PRIu64 " %-24s %-8s %s\n", x.node, x.addr.c_str(), role.c_str(),
                    prog.c_str());
    }
    if (m.joint) std::printf("(joint configuration; * = voter of the outgoing configuration)\n");
}

std::string read_all(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"raftctl: talk to a raftd node over its client socket (see docs/raftctl.md)"};
    app.require_subcommand(1);
    std::string socket;
    int timeout_ms = 30000;
    app.add_option("-s,--socket", socket,
                   "raftd's socket (default: $RAFTD_SOCKET, else ./raftd.sock)");
    app.add_option("-t,--timeout", timeout_ms, "per-request deadline in milliseconds (0: none)")
        ->check(CLI::NonNegativeNumber);

    bool json = false;
    auto* status = app.add_subcommand("status", "show this node's view of the cluster");
    status->add_flag("--json", json, "one JSON object instead of a table");

    auto* ping = app.add_subcommand("ping", "check that raftd answers");

    std::string data;
    bool data_set = false;
    auto* propose = app.add_subcommand("propose", "append DATA (or stdin) and wait for its commit");
    propose->add_option("data", data, "the entry's bytes; '-' or absent: read stdin")
        ->each([&](const std::string&) { data_set = true; });

    uint64_t from = 0;
    uint64_t count = 0;
    bool as_hex = false;
    auto* tail = app.add_subcommand("tail", "follow the commit stream, one line per entry");
    tail->add_option("-f,--from", from, "first index (default: only new entries; 1: everything)");
    tail->add_option(
        "-n,--count", count,
        "stop after this many events: entries or whole snapshots (default: follow forever)");
    tail->add_flag("--hex", as_hex, "print data as hex");
    tail->add_flag("--json", json, "one JSON object per event");

    auto* read_index =
        app.add_subcommand("read-index", "print an index safe for linearizable reads");
    bool lease = false;
    read_index->add_flag("--lease", lease,
                         "may be answered from the leader's lease, without a quorum round "
                         "(needs lease_read on the nodes; docs/protocol.md 6.5)");

    auto* members = app.add_subcommand("members", "list the configuration");
    members->add_flag("--json", json, "JSON instead of a table");

    uint64_t node = 0;
    std::string addr;
    bool learner = false;
    auto* member = app.add_subcommand("member", "change the membership (replies once applied)");
    member->require_subcommand(1);
    auto* madd = member->add_subcommand("add", "add NODE at ADDR (host:port)");
    madd->add_option("node", node, "node id")->required();
    madd->add_option("addr", addr, "peer address host:port")->required();
    madd->add_flag("--learner", learner, "add as a non-voting learner");
    auto* mremove = member->add_subcommand("remove", "remove NODE");
    mremove->add_option("node", node, "node id")->required();
    auto* mpromote = member->add_subcommand("promote", "make learner NODE a voter");
    mpromote->add_option("node", node, "node id")->required();
    auto* mdemote = member->add_subcommand("demote", "make voter NODE a learner");
    mdemote->add_option("node", node, "node id")->required();

    auto* transfer = app.add_subcommand("transfer-leader", "hand leadership to NODE");
    transfer->add_option("node", node, "node id")->required();

    auto* campaign = app.add_subcommand("campaign", "make this node start an election now");

    std::vector<std::string> health_sockets, health_configs;
    auto* health = app.add_subcommand(
        "health", "check every node given: a leader known and a quorum read within the deadline");
    health->add_option("--sockets", health_sockets, "client sockets, comma-separated")
        ->delimiter(',');
    health
        ->add_option("--config", health_configs,
                     "raftd configuration files (their socket), comma-separated or repeated")
        ->delimiter(',');
    health->add_flag("--json", json, "one JSON object per node");

    uint64_t snap_index = 0;
    std::string file;
    auto* snapshot =
        app.add_subcommand("snapshot", "save FILE as the application snapshot at INDEX");
    snapshot->add_option("-i,--index", snap_index, "the applied index the snapshot covers")
        ->required();
    snapshot->add_option("file", file, "the snapshot's bytes ('-': stdin)")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int r = app.exit(e);
        return r == 0 ? kOk : kUsage;
    }

    if (*health) {
        std::vector<std::string> socks = health_sockets;
        if (auto err = sockets_from_configs(health_configs, socks)) {
            std::fprintf(stderr, "raftctl: %s\n", err->c_str());
            return kUsage;
        }
        if (socks.empty()) socks.push_back(rc::default_socket(socket));
        // --timeout is the deadline of each node when given (0: none); by default a short one.
        const int deadline = app.count("--timeout") ? timeout_ms : 5000;
        std::vector<Health> results(socks.size());
        std::vector<std::thread> threads;
        for (size_t i = 0; i < socks.size(); ++i)
            threads.emplace_back([&, i] { results[i] = check_health(socks[i], deadline); });
        for (auto& t : threads)
            t.join();
        int rc = kOk;
        for (const Health& h : results) {
            std::printf("%s\n", health_line(h, json).c_str());
            if (!h.healthy && rc == kOk) rc = exit_for(*h.error);
        }
        return rc;
    }

    rc::Options opts;
    opts.timeout_ms = timeout_ms;
    opts.name = "raftctl";
    auto conn = rc::Client::connect(rc::default_socket(socket), opts);
    if (!conn) return fail(conn.error());
    rc::Client& c = **conn;

    if (*status) {
        auto s = c.status();
        if (!s) return fail(s.error());
        if (json) {
            std::printf("{\"node_id\":%" PRIu64 ",\"cluster\":%s,\"role\":%s,\"term\":%" PRIu64
                        ",\"leader\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"first_index\":%" PRIu64
                        ",\"last_index\":%" PRIu64 ",\"snapshot_index\":%" PRIu64
                        ",\"wal_syncs\":%" PRIu64 ",\"members\":%s,\"joint\":%s,\"version\":%s}\n",
                        s->node_id, json_str(s->cluster).c_str(), json_str(s->role).c_str(),
                        s->term, s->leader, s->commit, s->first_index, s->last_index,
                        s->snapshot_index, s->wal_syncs, members_json(s->members).c_str(),
                        s->members.joint ? "true" : "false", json_str(s->version).c_str());
        } else {
            std::printf("node      %" PRIu64 "\n", s->node_id);
            std::printf("cluster   %s\n", s->cluster.c_str());
            std::printf("role      %s\n", s->role.c_str());
            std::printf("term      %" PRIu64 "\n", s->term);
            std::printf("leader    %" PRIu64 "%s\n", s->leader, s->leader ? "" : " (none known)");
            std::printf("commit    %" PRIu64 "\n", s->commit);
            std::printf("log       %" PRIu64 "..%" PRIu64 "\n", s->first_index, s->last_index);
            std::printf("snapshot  %" PRIu64 "\n", s->snapshot_index);
            std::printf("syncs     %" PRIu64 "\n", s->wal_syncs);
            std::printf("version   %s\n\n", s->version.c_str());
            print_members_table(s->members);
        }
        return kOk;
    }
    if (*ping) {
        auto r = c.ping();
        if (!r) return fail(r.error());
        std::printf("ok node %" PRIu64 " cluster %s\n", c.server().node_id,
                    c.server().cluster.c_str());
        return kOk;
    }
    if (*propose) {
        if (!data_set || data == "-") data = read_all(std::cin);
        auto r = c.propose(data);
        if (!r) return fail(r.error());
        std::printf("%" PRIu64 " %" PRIu64 "\n", r->index, r->term);
        return kOk;
    }
    if (*tail) {
        uint64_t seen = 0;
        bool done = false;
        std::optional<rc::Error> ended;
        std::string snap_bytes;
        auto on = [&](const rc::Event& e) {
            if (done) return;
            if (e.kind == rc::Event::Kind::kEnd) {
                ended = e.error;
                done = true;
                return;
            }
            if (e.kind == rc::Event::Kind::kSnapshot) {
                if (e.offset == 0) snap_bytes.clear();
                snap_bytes += e.data;
                if (!e.done) return;
                if (json)
                    std::printf("{\"ev\":\"snapshot\",\"index\":%" PRIu64 ",\"term\":%" PRIu64
                                ",\"size\":%zu,\"members\":%s,\"joint\":%s}\n",
                                e.index, e.term, snap_bytes.size(),
                                members_json(e.members ? *e.members : rc::Members{}).c_str(),
                                e.members && e.members->joint ? "true" : "false");
                else
                    std::printf("%" PRIu64 " %" PRIu64 " snapshot %zu bytes\n", e.index, e.term,
                                snap_bytes.size());
                snap_bytes.clear();
                if (count && ++seen >= count) done = true;
                std::fflush(stdout);
                return;
            } else if (json) {
                std::printf("%s\n", entry_json(e, as_hex).c_str());
            } else {
                std::printf("%s\n", entry_line(e, as_hex).c_str());
            }
            std::fflush(stdout);
            if (e.kind == rc::Event::Kind::kEntry && count && ++seen >= count) done = true;
        };
        auto sub = c.subscribe(from ? std::optional<uint64_t>(from) : std::nullopt, on);
        if (!sub) return fail(sub.error());
        while (!done) {
            auto r = c.poll(-1);
            if (!r) return fail(r.error());
        }
        std::fflush(stdout);
        if (ended) return fail(*ended);
        return kOk;
    }
    if (*read_index) {
        auto r = c.read_index(lease);
        if (!r) return fail(r.error());
        std::printf("%" PRIu64 "\n", *r);
        return kOk;
    }
    if (*members) {
        auto r = c.members();
        if (!r) return fail(r.error());
        if (json)
            std::printf("{\"members\":%s,\"joint\":%s}\n", members_json(*r).c_str(),
                        r->joint ? "true" : "false");
        else
            print_members_table(*r);
        return kOk;
    }
    if (*member) {
        rc::Result<rc::Members> r = rc::Error{};
        if (*madd)
            r = c.add_member(node, addr, learner);
        else if (*mremove)
            r = c.remove_member(node);
        else if (*mpromote)
            r = c.promote(node);
        else
            r = c.demote(node);
        if (!r) return fail(r.error());
        print_members_table(*r);
        return kOk;
    }
    if (*transfer) {
        auto r = c.transfer_leader(node);
        if (!r) return fail(r.error());
        std::printf("leader %" PRIu64 "\n", *r);
        return kOk;
    }
    if (*campaign) {
        auto r = c.campaign();
        if (!r) return fail(r.error());
        std::printf("term %" PRIu64 "\n", *r);
        return kOk;
    }
    if (*snapshot) {
        std::string bytes;
        if (file == "-") {
            bytes = read_all(std::cin);
        } else {
            std::ifstream f(file, std::ios::binary);
            if (!f) {
                std::fprintf(stderr, "raftctl: cannot read %s\n", file.c_str());
                return kUsage;
            }
            bytes = read_all(f);
        }
        auto r = c.snapshot(snap_index, bytes);
        if (!r) return fail(r.error());
        std::printf("snapshot %" PRIu64 " saved (%zu bytes)\n", *r, bytes.size());
        return kOk;
    }
    return kUsage;
}
