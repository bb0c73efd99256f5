// Reply and event decoders (the client half of protocol.h): the one place that reads the
// server's replies, for the C++ client, raftbench and the daemon's forwarded requests.
#include "ipc/protocol.h"

namespace raftd::ipc {

namespace {

using Obj = msgpack::object;

uint64_t u64(const Obj& m, std::string_view key) {
    return find_uint(m, key).value_or(0);
}

bool boolean(const Obj& m, std::string_view key) {
    const Obj* o = map_find(m, key);
    return o && o->type == msgpack::type::BOOLEAN && o->via.boolean;
}

// A str or bin field's bytes, borrowed from the frame; empty when absent or of another type.
std::string_view bytes(const Obj& m, std::string_view key) {
    const Obj* o = map_find(m, key);
    if (!o) return {};
    if (o->type == msgpack::type::STR) return std::string_view(o->via.str.ptr, o->via.str.size);
    if (o->type == msgpack::type::BIN) return std::string_view(o->via.bin.ptr, o->via.bin.size);
    return {};
}

std::string str(const Obj& m, std::string_view key) {
    return std::string(bytes(m, key));
}

}  // namespace

std::optional<uint64_t> find_uint(const msgpack::object& map, std::string_view key) {
    const Obj* o = map_find(map, key);
    if (o && o->type == msgpack::type::POSITIVE_INTEGER) return o->via.u64;
    return std::nullopt;
}

ReplyHead decode_reply_head(const msgpack::object& root) {
    ReplyHead h;
    h.id = find_uint(root, "id");
    h.event = map_find(root, "ev") != nullptr;
    h.ok = !h.event && boolean(root, "ok");
    return h;
}

Error decode_error(const msgpack::object& reply, std::string* wire_code) {
    Error e;
    const Obj* em = map_find(reply, "error");
    if (!em || em->type != msgpack::type::MAP) {
        e.code = ErrorCode::kInternal;
        e.message = "error reply without an error map";
        if (wire_code) *wire_code = std::string(error_code_name(e.code));
        return e;
    }
    std::string code = str(*em, "code");
    e.code = error_code_from_name(code).value_or(ErrorCode::kInternal);
    e.message = str(*em, "message");
    if (const Obj* l = map_find(*em, "leader"); l && l->type == msgpack::type::MAP)
        e.leader = LeaderHint{u64(*l, "node"), str(*l, "addr")};
    if (wire_code) *wire_code = std::move(code);
    return e;
}

Result<Membership> decode_membership(const msgpack::object& reply) {
    const Obj* ms = map_find(reply, "members");
    if (!ms || ms->type != msgpack::type::ARRAY)
        return Status::invalid_argument("reply without members");
    Membership m;
    m.joint = boolean(reply, "joint");
    for (uint32_t i = 0; i < ms->via.array.size; ++i) {
        const Obj& o = ms->via.array.ptr[i];
        if (o.type != msgpack::type::MAP) return Status::invalid_argument("bad member in reply");
        MemberInfo mi;
        mi.node = u64(o, "node");
        mi.addr = str(o, "addr");
        mi.voter = boolean(o, "voter");
        mi.outgoing = boolean(o, "outgoing");
        if (const Obj* p = map_find(o, "progress"); p && p->type == msgpack::type::MAP)
            mi.progress = Progress{u64(*p, "match"), u64(*p, "next"), str(*p, "state")};
        m.members.push_back(std::move(mi));
    }
    return m;
}

HelloReply decode_hello_reply(const msgpack::object& reply) {
    HelloReply h;
    h.version = u64(reply, "version");
    h.node_id = u64(reply, "node_id");
    h.cluster = str(reply, "cluster");
    h.max_frame = static_cast<uint32_t>(u64(reply, "max_frame"));
    h.max_entry = static_cast<uint32_t>(u64(reply, "max_entry"));
    return h;
}

ProposeReply decode_propose_reply(const msgpack::object& reply) {
    const msgpack::object* dup = map_find(reply, "duplicate");
    return ProposeReply{u64(reply, "index"), u64(reply, "term"),
                        dup && dup->type == msgpack::type::BOOLEAN && dup->via.boolean};
}

Result<StatusReply> decode_status_reply(const msgpack::object& reply) {
    StatusReply s;
    s.node_id = u64(reply, "node_id");
    s.cluster = str(reply, "cluster");
    s.role = str(reply, "role");
    s.term = u64(reply, "term");
    s.leader = u64(reply, "leader");
    s.commit = u64(reply, "commit");
    s.first_index = u64(reply, "first_index");
    s.last_index = u64(reply, "last_index");
    s.snapshot_index = u64(reply, "snapshot_index");
    s.wal_syncs = u64(reply, "wal_syncs");
    auto m = decode_membership(reply);
    if (!m) return m.status();
    s.membership = std::move(m).value();
    s.version = str(reply, "version");
    return s;
}

Result<Event> decode_event(const msgpack::object& root) {
    Event ev;
    const std::string_view kind = bytes(root, "ev");
    ev.sub = u64(root, "id");
    ev.index = u64(root, "index");
    ev.term = u64(root, "term");
    ev.data = bytes(root, "data");
    if (kind == "entry") {
        ev.kind = Event::Kind::kEntry;
        ev.type = str(root, "type");
        ev.client = u64(root, "client");
        ev.seq = u64(root, "seq");
        if (map_find(root, "members")) {
            auto m = decode_membership(root);
            if (!m) return m.status();
            ev.membership = std::move(m).value();
        }
    } else if (kind == "snapshot") {
        ev.kind = Event::Kind::kSnapshot;
        ev.offset = u64(root, "offset");
        ev.done = boolean(root, "done");
        auto m = decode_membership(root);
        if (!m) return m.status();
        ev.membership = std::move(m).value();
    } else {
        ev.kind = Event::Kind::kEnd;
        ev.error = decode_error(root, &ev.error_code);
    }
    return ev;
}

}  // namespace raftd::ipc
