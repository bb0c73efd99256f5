// Reading values into a Config: from TOML, from flag text, and the cross-option checks.
//
// toml++ is compiled header-only into this one translation unit, without exceptions, so the
// rest of raftd neither links it nor sees it throw.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon/config.h"

namespace raftd::daemon {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

// A value read from TOML or flag text, before bounds and assignment.
using Value =
    std::variant<bool, uint64_t, std::string, std::vector<raft::Member>, std::vector<uint32_t>>;

Result<uint64_t> parse_uint(std::string_view s, int base = 10) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size())
        return Status::invalid_argument("expected a non-negative integer, got \"" + std::string(s) +
                                        "\"");
    return v;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    if (trim(s).empty()) return out;
    size_t start = 0;
    while (true) {
        size_t comma = s.find(',', start);
        out.push_back(trim(s.substr(start, comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

Result<raft::Member> parse_member(std::string_view s) {
    size_t eq = s.find('=');
    if (eq == std::string_view::npos)
        return Status::invalid_argument("member \"" + std::string(s) +
                                        "\" is not of the form id=host:port");
    auto id = parse_uint(trim(s.substr(0, eq)));
    if (!id || *id == 0)
        return Status::invalid_argument("member \"" + std::string(s) +
                                        "\": the id must be a positive integer");
    std::string_view addr = trim(s.substr(eq + 1));
    if (auto hp = parse_host_port(addr); !hp)
        return Status::invalid_argument("member \"" + std::string(s) +
                                        "\": " + hp.status().message());
    return raft::Member{*id, std::string(addr)};
}

// A user or group id: (uint32_t)-1 means "no id" to the kernel.
Result<uint32_t> parse_id(uint64_t v) {
    if (v >= UINT32_MAX)
        return Status::invalid_argument("id " + std::to_string(v) + " is too large");
    return static_cast<uint32_t>(v);
}

std::string bound_text(const OptionSpec& o, uint64_t v) {
    if (o.kind == Kind::kBytes) return format_bytes(v);
    if (o.kind == Kind::kMode) {
        std::ostringstream s;
        s << "0" << std::oct << v;
        return s.str();
    }
    return std::to_string(v);
}

// Checks `v` against the option's rules and stores it. Returns the reason on refusal.
Status assign(const OptionSpec& o, Value v, Config& cfg) {
    if (auto* n = std::get_if<uint64_t>(&v)) {
        if (*n < o.min)
            return Status::invalid_argument("must be at least " + bound_text(o, o.min) + " (got " +
                                            bound_text(o, *n) + ")");
        if (*n > o.max)
            return Status::invalid_argument("must be at most " + bound_text(o, o.max) + " (got " +
                                            bound_text(o, *n) + ")");
    }
    if (auto* s = std::get_if<std::string>(&v)) {
        if (o.kind == Kind::kEnum) {
            bool found = false;
            std::string_view rest = o.choices;
            while (!rest.empty()) {
                size_t bar = rest.find('|');
                if (rest.substr(0, bar) == *s) found = true;
                if (bar == std::string_view::npos) break;
                rest.remove_prefix(bar + 1);
            }
            if (!found)
                return Status::invalid_argument("must be one of " + std::string(o.choices) +
                                                " (got \"" + *s + "\")");
        }
        if (o.kind == Kind::kAddr && !(s->empty() && o.def == "\"\"")) {
            if (auto hp = parse_host_port(*s); !hp) return hp.status();
        }
    }
    return std::visit(
        [&](auto field) -> Status {
            using F = std::remove_reference_t<decltype(cfg.*field)>;
            if constexpr (std::is_same_v<F, uint32_t>) {
                cfg.*field = static_cast<uint32_t>(std::get<uint64_t>(v));
            } else {
                if (!std::holds_alternative<F>(v))
                    return Status::internal("option table kind does not match its field");
                cfg.*field = std::move(std::get<F>(v));
            }
            return Status::ok();
        },
        o.field);
}

const char* toml_type_name(const toml::node& n) {
    switch (n.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        default:
            return "a date or time";
    }
}

Result<Value> from_toml(const OptionSpec& o, const toml::node& n) {
    auto wrong = [&](const char* want) {
        return Status::invalid_argument(std::string("expected ") + want + ", got " +
                                        toml_type_name(n));
    };
    auto integer = [&]() -> Result<uint64_t> {
        int64_t i = *n.value<int64_t>();
        if (i < 0)
            return Status::invalid_argument("must not be negative (got " + std::to_string(i) + ")");
        return static_cast<uint64_t>(i);
    };
    switch (o.kind) {
        case Kind::kBool:
            if (!n.is_boolean()) return wrong("true or false");
            return Value(*n.value<bool>());
        case Kind::kUint:
            if (!n.is_integer()) return wrong("an integer");
            if (auto i = integer(); !i)
                return i.status();
            else
                return Value(*i);
        case Kind::kBytes:
            if (n.is_integer()) {
                if (auto i = integer(); !i)
                    return i.status();
                else
                    return Value(*i);
            }
            if (!n.is_string()) return wrong("a size (an integer or a string like \"64MiB\")");
            if (auto b = parse_bytes(*n.value<std::string_view>()); !b)
                return b.status();
            else
                return Value(*b);
        case Kind::kMode:
            if (n.is_integer()) {
                if (auto i = integer(); !i)
                    return i.status();
                else
                    return Value(*i);
            }
            if (!n.is_string()) return wrong("an octal mode such as 0o660 or \"0660\"");
            if (auto m = parse_uint(*n.value<std::string_view>(), 8); !m)
                return m.status();
            else
                return Value(*m);
        case Kind::kString:
        case Kind::kEnum:
        case Kind::kAddr:
            if (!n.is_string()) return wrong("a string");
            return Value(std::string(*n.value<std::string_view>()));
        case Kind::kMembers: {
            if (!n.is_array()) return wrong("an array of \"id=host:port\" strings");
            std::vector<raft::Member> ms;
            for (const auto& e : *n.as_array()) {
                if (!e.is_string()) return wrong("an array of \"id=host:port\" strings");
                auto m = parse_member(*e.value<std::string_view>());
                if (!m) return m.status();
                ms.push_back(std::move(m.value()));
            }
            return Value(std::move(ms));
        }
        case Kind::kIds: {
            if (!n.is_array()) return wrong("an array of numeric ids");
            std::vector<uint32_t> uids;
            for (const auto& e : *n.as_array()) {
                if (!e.is_integer() || *e.value<int64_t>() < 0)
                    return wrong("an array of numeric ids");
                auto u = parse_id(static_cast<uint64_t>(*e.value<int64_t>()));
                if (!u) return u.status();
                uids.push_back(*u);
            }
            return Value(std::move(uids));
        }
    }
    return Status::internal("unhandled option kind");
}

Result<Value> from_text(const OptionSpec& o, std::string_view t) {
    switch (o.kind) {
        case Kind::kBool:
            if (t == "true" || t == "yes" || t == "on" || t == "1") return Value(true);
            if (t == "false" || t == "no" || t == "off" || t == "0") return Value(false);
            return Status::invalid_argument("expected true or false, got \"" + std::string(t) +
                                            "\"");
        case Kind::kUint:
            if (auto n = parse_uint(t); !n)
                return n.status();
            else
                return Value(*n);
        case Kind::kBytes:
            if (auto n = parse_bytes(t); !n)
                return n.status();
            else
                return Value(*n);
        case Kind::kMode: {
            std::string_view d = t.starts_with("0o") ? t.substr(2) : t;
            auto n = parse_uint(d, 8);
            if (!n)
                return Status::invalid_argument("expected an octal mode such as 0660, got \"" +
                                                std::string(t) + "\"");
            return Value(*n);
        }
        case Kind::kString:
        case Kind::kEnum:
        case Kind::kAddr:
            return Value(std::string(t));
        case Kind::kMembers: {
            std::vector<raft::Member> ms;
            for (auto part : split_commas(t)) {
                auto m = parse_member(part);
                if (!m) return m.status();
                ms.push_back(std::move(m.value()));
            }
            return Value(std::move(ms));
        }
        case Kind::kIds: {
            std::vector<uint32_t> uids;
            for (auto part : split_commas(t)) {
                auto n = parse_uint(part);
                if (!n) return n.status();
                auto u = parse_id(*n);
                if (!u) return u.status();
                uids.push_back(*u);
            }
            return Value(std::move(uids));
        }
    }
    return Status::internal("unhandled option kind");
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string suggestion(std::string_view key) {
    const OptionSpec* best = nullptr;
    size_t best_d = 3;  // suggest only near misses
    for (const auto& o : options()) {
        size_t d = edit_distance(key, o.name);
        if (d < best_d) best = &o, best_d = d;
    }
    return best ? " (did you mean '" + std::string(best->name) + "'?)" : "";
}

}  // namespace

Result<uint64_t> parse_bytes(std::string_view s) {
    s = trim(s);
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9')
        ++digits;
    auto bad = [&] {
        return Status::invalid_argument(
            "expected a size such as 4096, \"512KiB\", \"64MiB\" or "
            "\"1GiB\", got \"" +
            std::string(s) + "\"");
    };
    if (digits == 0) return bad();
    auto n = parse_uint(s.substr(0, digits));
    if (!n) return bad();
    std::string_view unit = trim(s.substr(digits));
    uint64_t mul = 1;
    if (unit.empty() || unit == "B")
        mul = 1;
    else if (unit == "KiB" || unit == "K")
        mul = KiB;
    else if (unit == "MiB" || unit == "M")
        mul = MiB;
    else if (unit == "GiB" || unit == "G")
        mul = GiB;
    else
        return bad();
    if (*n > UINT64_MAX / mul) return bad();
    return *n * mul;
}

std::string format_bytes(uint64_t n) {
    if (n != 0 && n % GiB == 0) return std::to_string(n / GiB) + "GiB";
    if (n != 0 && n % MiB == 0) return std::to_string(n / MiB) + "MiB";
    if (n != 0 && n % KiB == 0) return std::to_string(n / KiB) + "KiB";
    return std::to_string(n);
}

Result<HostPort> parse_host_port(std::string_view s) {
    auto bad = [&](const std::string& why) {
        return Status::invalid_argument("address \"" + std::string(s) + "\": " + why);
    };
    HostPort hp;
    std::string_view port;
    if (s.starts_with('[')) {
        size_t close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return bad("expected [ipv6]:port");
        hp.host = std::string(s.substr(1, close - 1));
        port = s.substr(close + 2);
    } else {
        size_t colon = s.rfind(':');
        if (colon == std::string_view::npos) return bad("expected host:port");
        hp.host = std::string(s.substr(0, colon));
        if (hp.host.find(':') != std::string::npos) return bad("put an IPv6 host in brackets");
        port = s.substr(colon + 1);
    }
    if (hp.host.empty()) return bad("the host is empty");
    auto p = parse_uint(port);
    if (!p || *p == 0 || *p > 65535) return bad("the port must be 1..65535");
    hp.port = static_cast<uint16_t>(*p);
    return hp;
}

std::vector<raft::Member> Config::bootstrap_members() const {
    if (!initial_cluster.empty()) return initial_cluster;
    return {raft::Member{node_id, advertise_addr()}};
}

Status apply_text(const OptionSpec& opt, std::string_view text, std::string_view origin,
                  Config& cfg) {
    auto v = from_text(opt, text);
    Status st = v ? assign(opt, std::move(v.value()), cfg) : v.status();
    if (st) return st;
    return Status::invalid_argument(std::string(origin) + ": " + st.message());
}

Status apply_toml(std::string_view text, std::string_view source, Config& cfg) {
    toml::parse_result parsed = toml::parse(text, source);
    if (!parsed) {
        const auto& err = parsed.error();
        return Status::invalid_argument(
            std::string(source) + ":" + std::to_string(err.source().begin.line) + ":" +
            std::to_string(err.source().begin.column) + ": " + std::string(err.description()));
    }
    for (auto&& [key, node] : parsed.table()) {
        std::string where = std::string(source) + ":" + std::to_string(key.source().begin.line);
        const OptionSpec* opt = find_option(key.str());
        if (const RemovedOption* gone = find_removed_option(key.str()); !opt && gone) {
            cfg.warnings.push_back(where + ": option '" + std::string(key.str()) +
                                   "' was removed and is ignored: " + std::string(gone->why));
            continue;
        }
        if (!opt) {
            std::string what = node.is_table() ? "unknown section [" : "unknown key '";
            std::string end = node.is_table() ? "]" : "'";
            return Status::invalid_argument(where + ": " + what + std::string(key.str()) + end +
                                            suggestion(key.str()));
        }
        auto v = from_toml(*opt, node);
        Status st = v ? assign(*opt, std::move(v.value()), cfg) : v.status();
        if (!st)
            return Status::invalid_argument(where + ": key '" + std::string(key.str()) +
                                            "': " + st.message());
    }
    return Status::ok();
}

Status apply_file(const std::string& path, Config& cfg) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::invalid_argument(path +
                                        ": cannot read config file: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Status::invalid_argument(path + ": read error: " + std::strerror(errno));
    return apply_toml(ss.str(), path, cfg);
}

Config default_config() {
    static const Config defaults = [] {
        Config c;
        std::string doc;
        for (const auto& o : options())
            doc += std::string(o.name) + " = " + std::string(o.def) + "\n";
        Status st = apply_toml(doc, "<built-in defaults>", c);
        // A bad default is a bug in the table; config_test checks every default, so this
        // can only fire during development.
        if (!st) {
            std::fprintf(stderr, "raftd: %s\n", st.to_string().c_str());
            std::abort();
        }
        return c;
    }();
    return defaults;
}

Status validate(const Config& c) {
    auto bad = [](std::string m) { return Status::invalid_argument(std::move(m)); };
    if (c.cluster.empty() || c.cluster.size() > 64 ||
        !std::all_of(c.cluster.begin(), c.cluster.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ||
                   ch == '-';
        }))
        return bad("cluster: must be 1 to 64 letters, digits, '.', '_' or '-' (got \"" + c.cluster +
                   "\")");
    if (c.data_dir.empty()) return bad("data_dir: must not be empty");
    if (c.socket.empty()) return bad("socket: must not be empty");
    if (c.socket.size() > 107)
        return bad("socket: path is " + std::to_string(c.socket.size()) +
                   " bytes; a Unix socket path holds at most 107");
    if (c.heartbeat_ticks >= c.election_ticks)
        return bad("heartbeat_ticks (" + std::to_string(c.heartbeat_ticks) +
                   ") must be smaller than election_ticks (" + std::to_string(c.election_ticks) +
                   ")");
    if (c.lease_read && !c.check_quorum)
        return bad(
            "lease_read needs check_quorum: without it a deposed leader never learns "
            "that its lease ended");
    if (c.reconnect_min_ms > c.reconnect_max_ms)
        return bad("reconnect_min_ms (" + std::to_string(c.reconnect_min_ms) +
                   ") must not exceed reconnect_max_ms (" + std::to_string(c.reconnect_max_ms) +
                   ")");
    const uint64_t room = c.max_frame - 4 * KiB;
    if (c.max_entry > room)
        return bad("max_entry (" + format_bytes(c.max_entry) +
                   ") must be at most max_frame - 4KiB (" + format_bytes(room) + ")");
    if (c.max_append_bytes > room)
        return bad("max_append_bytes (" + format_bytes(c.max_append_bytes) +
                   ") must be at most max_frame - 4KiB (" + format_bytes(room) + ")");
    if (c.snapshot_chunk_bytes > room)
        return bad("snapshot_chunk_bytes (" + format_bytes(c.snapshot_chunk_bytes) +
                   ") must be at most max_frame - 4KiB (" + format_bytes(room) + ")");
    // Peer TLS is all or nothing: a node with half the material would refuse every peer.
    const int tls_set = !c.peer_tls_cert.empty() + !c.peer_tls_key.empty() + !c.peer_tls_ca.empty();
    if (tls_set != 0 && tls_set != 3)
        return bad(
            "peer_tls_cert, peer_tls_key and peer_tls_ca: set all three (peer TLS) or "
            "none (plaintext peers)");
    if (!c.peer_tls_crl.empty() && tls_set == 0)
        return bad("peer_tls_crl: needs peer_tls_cert, peer_tls_key and peer_tls_ca");
    std::set<raft::NodeId> ids;
    bool self_listed = false;
    for (const auto& m : c.initial_cluster) {
        if (!ids.insert(m.id).second)
            return bad("initial_cluster: node id " + std::to_string(m.id) + " is listed twice");
        if (m.id == c.node_id) self_listed = true;
    }
    if (!c.initial_cluster.empty() && !c.join && !self_listed)
        return bad("initial_cluster does not list this node (node_id " + std::to_string(c.node_id) +
                   ")");
    return Status::ok();
}

}  // namespace raftd::daemon
