// Request parsing and validation (the server's decode half of protocol.h; replies and events
// are decoded in protocol_decode.cpp).
#include <algorithm>
#include <array>
#include <iterator>
#include <type_traits>

#include "ipc/protocol.h"

namespace raftd::ipc {

namespace {

constexpr std::string_view kCodeNames[] = {
#define RAFTD_CODE_NAME(name, wire) wire,
    RAFTD_PROTOCOL_ERROR_CODES(RAFTD_CODE_NAME)
#undef RAFTD_CODE_NAME
};

std::string_view type_name(const msgpack::object& o) {
    switch (o.type) {
        case msgpack::type::NIL:
            return "nil";
        case msgpack::type::BOOLEAN:
            return "bool";
        case msgpack::type::POSITIVE_INTEGER:
            return "unsigned integer";
        case msgpack::type::NEGATIVE_INTEGER:
            return "negative integer";
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            return "float";
        case msgpack::type::STR:
            return "str";
        case msgpack::type::BIN:
            return "bin";
        case msgpack::type::ARRAY:
            return "array";
        case msgpack::type::MAP:
            return "map";
        case msgpack::type::EXT:
            return "ext";
    }
    return "unknown";
}

std::string_view as_sv(const msgpack::object& o) {
    return o.type == msgpack::type::BIN ? std::string_view(o.via.bin.ptr, o.via.bin.size)
                                        : std::string_view(o.via.str.ptr, o.via.str.size);
}

// Thrown only inside this file and caught in parse_request: a field error unwinds the
// per-op parser in one step instead of threading a Status through every getter.
struct FieldError {
    ErrorCode code;
    std::string message;
};

[[noreturn]] void bad(std::string msg) {
    throw FieldError{ErrorCode::kBadRequest, std::move(msg)};
}

[[noreturn]] void wrong_type(std::string_view where, std::string_view want,
                             const msgpack::object& o) {
    bad(std::string(where) + " must be " + std::string(want) + ", got " +
        std::string(type_name(o)));
}

// Reads the fields of one map (the request, or a member spec inside change_members).
class Fields {
  public:
    Fields(const msgpack::object& map, std::string prefix)
        : map_(map), prefix_(std::move(prefix)) {}

    const msgpack::object* get(std::string_view key) const { return map_find(map_, key); }
    std::string where(std::string_view key) const {
        return "field '" + prefix_ + std::string(key) + "'";
    }

    const msgpack::object& need(std::string_view key) const {
        const msgpack::object* o = get(key);
        if (!o) bad("missing " + where(key));
        return *o;
    }
    uint64_t u64(std::string_view key, const msgpack::object& o) const {
        if (o.type != msgpack::type::POSITIVE_INTEGER)
            wrong_type(where(key), "an unsigned integer", o);
        return o.via.u64;
    }
    uint64_t u64(std::string_view key) const { return u64(key, need(key)); }
    std::optional<uint64_t> opt_u64(std::string_view key) const {
        const msgpack::object* o = get(key);
        if (!o) return std::nullopt;
        return u64(key, *o);
    }
    raft::NodeId node(std::string_view key) const {
        uint64_t n = u64(key);
        if (n == raft::kNoNode) bad(where(key) + " must be a node id (at least 1)");
        return n;
    }
    bool opt_bool(std::string_view key, bool dflt) const {
        const msgpack::object* o = get(key);
        if (!o) return dflt;
        if (o->type != msgpack::type::BOOLEAN) wrong_type(where(key), "a bool", *o);
        return o->via.boolean;
    }
    bool boolean(std::string_view key) const {
        const msgpack::object& o = need(key);
        if (o.type != msgpack::type::BOOLEAN) wrong_type(where(key), "a bool", o);
        return o.via.boolean;
    }
    std::string str(std::string_view key, const msgpack::object& o) const {
        if (o.type != msgpack::type::STR) wrong_type(where(key), "a str", o);
        return std::string(as_sv(o));
    }
    std::string str(std::string_view key) const { return str(key, need(key)); }
    // The one copy of a payload: from the frame buffer into its shared Payload.
    raft::Payload bin(std::string_view key, uint32_t max) const {
        const msgpack::object& o = need(key);
        if (o.type != msgpack::type::BIN) wrong_type(where(key), "a bin", o);
        if (o.via.bin.size > max)
            throw FieldError{ErrorCode::kTooLarge,
                             where(key) + " holds " + std::to_string(o.via.bin.size) +
                                 " bytes; max_entry is " + std::to_string(max)};
        return raft::Payload(o.via.bin.ptr, o.via.bin.size);
    }
    const msgpack::object& array(std::string_view key) const {
        const msgpack::object& o = need(key);
        if (o.type != msgpack::type::ARRAY) wrong_type(where(key), "an array", o);
        return o;
    }

  private:
    const msgpack::object& map_;
    std::string prefix_;
};

// "host:port" with a non-empty host and a port in 1..65535.
void check_addr(const Fields& f, std::string_view key, const std::string& addr) {
    const size_t colon = addr.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < addr.size() &&
              addr.size() - colon - 1 <= 5;
    unsigned port = 0;
    for (size_t i = colon + 1; ok && i < addr.size(); ++i) {
        if (addr[i] < '0' || addr[i] > '9') ok = false;
        port = port * 10 + static_cast<unsigned>(addr[i] - '0');
    }
    if (!ok || port == 0 || port > 65535) bad(f.where(key) + " must be \"host:port\"");
}

Request parse_op(std::string_view op, const Fields& f, const ParseLimits& lim) {
    if (op == "hello") {
        HelloRequest r;
        r.version = f.u64("version");
        if (const msgpack::object* n = f.get("name")) r.name = f.str("name", *n);
        return r;
    }
    if (op == "ping") return PingRequest{};
    if (op == "propose") return ProposeRequest{f.bin("data", lim.max_entry)};
    if (op == "subscribe") {
        SubscribeRequest r;
        r.from = f.opt_u64("from");
        if (r.from && *r.from == 0) bad(f.where("from") + " must be at least 1");
        return r;
    }
    if (op == "unsubscribe") return UnsubscribeRequest{f.u64("sub")};
    if (op == "read_index") return ReadIndexRequest{f.opt_bool("lease", false)};
    if (op == "snapshot") {
        SnapshotRequest r;
        r.index = f.u64("index");
        if (r.index == 0) bad(f.where("index") + " must be at least 1");
        r.offset = f.u64("offset");
        r.data = f.bin("data", lim.max_entry);
        r.done = f.boolean("done");
        return r;
    }
    if (op == "status") return StatusRequest{};
    if (op == "members") return MembersRequest{};
    if (op == "add_member") {
        AddMemberRequest r;
        r.node = f.node("node");
        r.addr = f.str("addr");
        check_addr(f, "addr", r.addr);
        r.learner = f.opt_bool("learner", false);
        return r;
    }
    if (op == "remove_member") return RemoveMemberRequest{f.node("node")};
    if (op == "promote") return PromoteRequest{f.node("node")};
    if (op == "demote") return DemoteRequest{f.node("node")};
    if (op == "change_members") {
        ChangeMembersRequest r;
        const msgpack::object& add = f.array("add");
        for (uint32_t i = 0; i < add.via.array.size; ++i) {
            const msgpack::object& m = add.via.array.ptr[i];
            const std::string prefix = "add[" + std::to_string(i) + "].";
            if (m.type != msgpack::type::MAP)
                wrong_type("field '" + prefix.substr(0, prefix.size() - 1) + "'", "a map", m);
            Fields mf(m, prefix);
            MemberSpec s;
            s.node = mf.node("node");
            s.addr = mf.str("addr");
            check_addr(mf, "addr", s.addr);
            s.learner = mf.opt_bool("learner", false);
            r.add.push_back(std::move(s));
        }
        const msgpack::object& rm = f.array("remove");
        for (uint32_t i = 0; i < rm.via.array.size; ++i) {
            const msgpack::object& n = rm.via.array.ptr[i];
            const std::string where = "field 'remove[" + std::to_string(i) + "]'";
            if (n.type != msgpack::type::POSITIVE_INTEGER) wrong_type(where, "a node id", n);
            if (n.via.u64 == raft::kNoNode) bad(where + " must be a node id (at least 1)");
            r.remove.push_back(n.via.u64);
        }
        if (r.add.empty() && r.remove.empty())
            bad("change_members needs at least one of 'add' or 'remove'");
        return r;
    }
    if (op == "transfer_leader") return TransferLeaderRequest{f.node("to")};
    if (op == "campaign") return CampaignRequest{};
    throw FieldError{ErrorCode::kUnknownOp, "unknown op '" + std::string(op) + "'"};
}

}  // namespace

std::string_view error_code_name(ErrorCode c) {
    return kCodeNames[static_cast<size_t>(c)];
}

std::optional<ErrorCode> error_code_from_name(std::string_view s) {
    for (size_t i = 0; i < std::size(kCodeNames); ++i)
        if (kCodeNames[i] == s) return static_cast<ErrorCode>(i);
    return std::nullopt;
}

std::string_view op_name(const Request& r) {
    static constexpr std::array<std::string_view, std::variant_size_v<Request>> kNames = {
        "hello",       "ping",           "propose",         "subscribe",
        "unsubscribe", "read_index",     "snapshot",        "status",
        "members",     "add_member",     "remove_member",   "promote",
        "demote",      "change_members", "transfer_leader", "campaign",
    };
    return kNames[r.index()];
}

bool waits_for_leader(const Request& r) {
    return std::visit(
        [](const auto& q) {
            using R = std::decay_t<decltype(q)>;
            return std::is_same_v<R, ProposeRequest> || std::is_same_v<R, ReadIndexRequest> ||
                   std::is_same_v<R, AddMemberRequest> || std::is_same_v<R, RemoveMemberRequest> ||
                   std::is_same_v<R, PromoteRequest> || std::is_same_v<R, DemoteRequest> ||
                   std::is_same_v<R, ChangeMembersRequest> ||
                   std::is_same_v<R, TransferLeaderRequest>;
        },
        r);
}

Parsed parse_request(const Frame& frame, const ParseLimits& limits) {
    Parsed p;
    const msgpack::object& root = frame.root();
    Fields f(root, "");
    try {
        // The id first, so every later error can echo it.
        const msgpack::object* id = f.get("id");
        if (!id) bad("missing field 'id'");
        if (id->type != msgpack::type::POSITIVE_INTEGER)
            wrong_type("field 'id'", "an unsigned integer", *id);
        p.id = id->via.u64;
        // A repeated key would make "which value counts" a guess; refuse it.
        std::vector<std::string_view> keys;
        keys.reserve(root.via.map.size);
        for (uint32_t i = 0; i < root.via.map.size; ++i)
            keys.push_back(as_sv(root.via.map.ptr[i].key));
        std::sort(keys.begin(), keys.end());
        if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end())
            bad("field '" + std::string(*dup) + "' appears more than once");
        const msgpack::object* op = f.get("op");
        if (!op) bad("missing field 'op'");
        if (op->type != msgpack::type::STR) wrong_type("field 'op'", "a str", *op);
        p.request = parse_op(as_sv(*op), f, limits);
        if (waits_for_leader(*p.request)) p.timeout_ms = f.opt_u64("timeout_ms");
    } catch (const FieldError& e) {
        p.request.reset();
        p.error = Error{e.code, e.message, std::nullopt};
    }
    return p;
}

}  // namespace raftd::ipc
