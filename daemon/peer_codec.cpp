// Peer frames: see peer_codec.h and docs/peer-protocol.md.
#include "daemon/peer_codec.h"

#include <cstring>
#include <type_traits>

#include "raft/confchange_codec.h"

namespace raftd::daemon {
namespace {

using ipc::FrameWriter;
using msgpack::object;

// Size of the fixed header in front of each entry's bytes in "ents" (docs/peer-protocol.md).
constexpr size_t kEntryHeader = 8 + 8 + 1 + 4;

void put_be(char* p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
        p[i] = static_cast<char>(v & 0xff);
        v >>= 8;
    }
}

uint64_t get_be(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

std::string_view key_of(const object& k) {
    return std::string_view(k.via.str.ptr, k.via.str.size);
}

Status field_error(std::string_view key, std::string_view want) {
    return Status::invalid_argument("peer frame: field '" + std::string(key) + "' must be " +
                                    std::string(want));
}

bool get_uint(const object& v, uint64_t& out) {
    if (v.type != msgpack::type::POSITIVE_INTEGER) return false;
    out = v.via.u64;
    return true;
}

bool get_bool(const object& v, bool& out) {
    if (v.type != msgpack::type::BOOLEAN) return false;
    out = v.via.boolean;
    return true;
}

bool get_bytes(const object& v, std::string_view& out) {
    if (v.type == msgpack::type::BIN) {
        out = std::string_view(v.via.bin.ptr, v.via.bin.size);
        return true;
    }
    if (v.type == msgpack::type::STR) {
        out = std::string_view(v.via.str.ptr, v.via.str.size);
        return true;
    }
    return false;
}

// Writers of one key and its value.
void pack_uint(FrameWriter& w, std::string_view key, uint64_t v) {
    w.str(key);
    w.pk().pack_uint64(v);
}

void pack_bool(FrameWriter& w, std::string_view key, bool v) {
    w.str(key);
    w.pk().pack(v);
}

void pack_str(FrameWriter& w, std::string_view key, std::string_view v) {
    w.str(key);
    w.str(v);
}

// Bytes: a std::string is copied, a Payload's bytes are shared (FrameWriter::bin).
template <class Bytes>
void pack_bin(FrameWriter& w, std::string_view key, const Bytes& v) {
    w.str(key);
    w.bin(v);
}

Status decode_entries(std::string_view blob, std::vector<raft::Entry>& out) {
    // Two passes: count first so the vector is allocated once.
    size_t n = 0;
    for (size_t pos = 0; pos < blob.size(); ++n) {
        if (blob.size() - pos < kEntryHeader) return field_error("ents", "whole entry records");
        uint64_t len = get_be(blob.data() + pos + 17, 4);
        if (blob.size() - pos - kEntryHeader < len)
            return field_error("ents", "whole entry records");
        pos += kEntryHeader + len;
    }
    out.reserve(n);
    for (size_t pos = 0; pos < blob.size();) {
        const char* p = blob.data() + pos;
        raft::Entry e;
        e.index = get_be(p, 8);
        e.term = get_be(p + 8, 8);
        auto type = static_cast<uint8_t>(p[16]);
        if (type < 1 || type > 3) return field_error("ents", "records with a known entry type");
        e.type = static_cast<raft::EntryType>(type);
        uint64_t len = get_be(p + 17, 4);
        if (len > 0) e.data = raft::Payload(p + kEntryHeader, len);
        out.push_back(std::move(e));
        pos += kEntryHeader + len;
    }
    return Status::ok();
}

Status decode_snapshot_meta(const object& v, raft::SnapshotMeta& meta) {
    if (v.type != msgpack::type::MAP) return field_error("snap", "a map");
    for (uint32_t i = 0; i < v.via.map.size; ++i) {
        const auto& kv = v.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) return field_error("snap", "a map with str keys");
        std::string_view k = key_of(kv.key);
        if (k == "index") {
            if (!get_uint(kv.val, meta.index)) return field_error("snap.index", "uint");
        } else if (k == "term") {
            if (!get_uint(kv.val, meta.term)) return field_error("snap.term", "uint");
        } else if (k == "conf") {
            std::string_view b;
            if (!get_bytes(kv.val, b)) return field_error("snap.conf", "bin");
            auto cs = raft::decode_conf_state(b);
            if (!cs)
                return Status::invalid_argument("peer frame: snap.conf: " + cs.status().message());
            meta.conf = std::move(cs).value();
        }
    }
    return Status::ok();
}

// ---- decoding: one table of fields per frame kind ------------------------------------------

// One key a frame map may hold and how its value is read into a T. Keys not in the table are
// ignored: a later minor revision may add optional fields (docs/peer-protocol.md, "Versions").
template <class T>
struct Field {
    std::string_view key;
    Status (*read)(std::string_view key, const object& v, T& out);
};

template <class T, size_t N>
Status read_fields(const object& map, const Field<T> (&fields)[N], T& out) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& kv = map.via.map.ptr[i];
        std::string_view k = key_of(kv.key);
        for (const Field<T>& f : fields) {
            if (f.key != k) continue;
            if (Status st = f.read(k, kv.val, out); !st) return st;
            break;
        }
    }
    return Status::ok();
}

// Readers of plain fields, by the member they fill: a wrong type is an error naming the key.
template <class M>
struct MemberOf;
template <class T, class V>
struct MemberOf<V T::*> {
    using Struct = T;
};
template <auto M>
using StructOf = typename MemberOf<decltype(M)>::Struct;

template <auto M>
Status uint_field(std::string_view k, const object& v, StructOf<M>& out) {
    return get_uint(v, out.*M) ? Status::ok() : field_error(k, "uint");
}

template <auto M>
Status bool_field(std::string_view k, const object& v, StructOf<M>& out) {
    return get_bool(v, out.*M) ? Status::ok() : field_error(k, "bool");
}

// Text (str) and opaque bytes (bin) are read alike, from either msgpack type; only the error
// says which one the format specifies.
template <auto M>
Status bytes_field(std::string_view k, const object& v, StructOf<M>& out, std::string_view want) {
    std::string_view s;
    if (!get_bytes(v, s)) return field_error(k, want);
    out.*M = std::remove_reference_t<decltype(out.*M)>(s.data(), s.size());
    return Status::ok();
}

template <auto M>
Status str_field(std::string_view k, const object& v, StructOf<M>& out) {
    return bytes_field<M>(k, v, out, "str");
}

template <auto M>
Status bin_field(std::string_view k, const object& v, StructOf<M>& out) {
    return bytes_field<M>(k, v, out, "bin");
}

constexpr Field<PeerHello> kHelloFields[] = {
    {"raftd_peer", uint_field<&PeerHello::version>},
    {"cluster", str_field<&PeerHello::cluster>},
    {"from", uint_field<&PeerHello::from>},
    {"to", uint_field<&PeerHello::to>},
    {"addr", str_field<&PeerHello::addr>},
    {"incarnation", uint_field<&PeerHello::incarnation>},
    {"bootstrapping", bool_field<&PeerHello::bootstrapping>},
};

constexpr Field<PeerWelcome> kWelcomeFields[] = {
    {"ok", bool_field<&PeerWelcome::ok>},
    {"node", uint_field<&PeerWelcome::node>},
    {"cluster", str_field<&PeerWelcome::cluster>},
    {"error", str_field<&PeerWelcome::error>},
    {"incarnation", uint_field<&PeerWelcome::incarnation>},
    {"known_incarnation", uint_field<&PeerWelcome::known_incarnation>},
    {"bootstrapping", bool_field<&PeerWelcome::bootstrapping>},
};

Status read_message_type(std::string_view k, const object& v, raft::Message& m) {
    uint64_t u = 0;
    if (!get_uint(v, u) || u < 1 || u > raft::kMaxMessageType)
        return field_error(k, "a message type (1..13)");
    m.type = static_cast<raft::MessageType>(u);
    return Status::ok();
}

Status read_entries(std::string_view k, const object& v, raft::Message& m) {
    if (v.type != msgpack::type::BIN) return field_error(k, "bin");
    return decode_entries(std::string_view(v.via.bin.ptr, v.via.bin.size), m.entries);
}

Status read_snapshot(std::string_view, const object& v, raft::Message& m) {
    return decode_snapshot_meta(v, m.snapshot);
}

constexpr Field<raft::Message> kMessageFields[] = {
    {"type", read_message_type},
    {"from", uint_field<&raft::Message::from>},
    {"to", uint_field<&raft::Message::to>},
    {"term", uint_field<&raft::Message::term>},
    {"log_term", uint_field<&raft::Message::log_term>},
    {"index", uint_field<&raft::Message::index>},
    {"commit", uint_field<&raft::Message::commit>},
    {"ents", read_entries},
    {"reject", bool_field<&raft::Message::reject>},
    {"hint", uint_field<&raft::Message::reject_hint>},
    {"round", uint_field<&raft::Message::round>},
    {"transfer", bool_field<&raft::Message::transfer>},
    {"quiet", bool_field<&raft::Message::quiet>},
    {"lease", bool_field<&raft::Message::lease>},
    {"ctx", bin_field<&raft::Message::context>},
    {"snap", read_snapshot},
    {"offset", uint_field<&raft::Message::offset>},
    {"data", bin_field<&raft::Message::data>},
    {"done", bool_field<&raft::Message::done>},
};

Status read_forward_kind(std::string_view k, const object& v, Forward& fw) {
    uint64_t u = 0;
    if (!get_uint(v, u) || u < 1 || u > 3) return field_error(k, "1, 2 or 3");
    fw.kind = static_cast<Forward::Kind>(u);
    return Status::ok();
}

constexpr Field<Forward> kForwardFields[] = {
    {"fwd", read_forward_kind},
    {"seq", uint_field<&Forward::seq>},
    {"data", bin_field<&Forward::data>},
    {"ok", bool_field<&Forward::ok>},
    {"index", uint_field<&Forward::index>},
    {"term", uint_field<&Forward::term>},
    {"code", str_field<&Forward::code>},
    {"msg", str_field<&Forward::message>},
};

}  // namespace

void encode_hello(ipc::OutBuffer& out, const PeerHello& h) {
    FrameWriter w(out);
    w.pk().pack_map(5 + (h.incarnation != 0) + h.bootstrapping);
    pack_uint(w, "raftd_peer", h.version);
    pack_str(w, "cluster", h.cluster);
    pack_uint(w, "from", h.from);
    pack_uint(w, "to", h.to);
    pack_str(w, "addr", h.addr);
    if (h.incarnation) pack_uint(w, "incarnation", h.incarnation);
    if (h.bootstrapping) pack_bool(w, "bootstrapping", true);
    w.finish();
}

Result<PeerHello> decode_hello(const ipc::Frame& f) {
    PeerHello h;
    h.version = 0;
    if (Status st = read_fields(f.root(), kHelloFields, h); !st) return st;
    if (f.find("raftd_peer") == nullptr)
        return Status::invalid_argument("not a raftd peer handshake");
    return h;
}

void encode_welcome(ipc::OutBuffer& out, const PeerWelcome& w) {
    FrameWriter fw(out);
    fw.pk().pack_map((w.ok ? 3 : 4) + (w.incarnation != 0) + (!w.ok && w.known_incarnation != 0) +
                     w.bootstrapping);
    pack_bool(fw, "ok", w.ok);
    pack_uint(fw, "node", w.node);
    pack_str(fw, "cluster", w.cluster);
    if (w.incarnation) pack_uint(fw, "incarnation", w.incarnation);
    if (w.bootstrapping) pack_bool(fw, "bootstrapping", true);
    if (!w.ok) {
        pack_str(fw, "error", w.error);
        if (w.known_incarnation) pack_uint(fw, "known_incarnation", w.known_incarnation);
    }
    fw.finish();
}

Result<PeerWelcome> decode_welcome(const ipc::Frame& f) {
    PeerWelcome w;
    if (Status st = read_fields(f.root(), kWelcomeFields, w); !st) return st;
    if (f.find("ok") == nullptr)
        return Status::invalid_argument("not a raftd peer handshake reply");
    return w;
}

size_t encode_message(ipc::OutBuffer& out, const raft::Message& m) {
    // Zero-valued fields are left out (the receiver's default is zero), so a heartbeat is a
    // few dozen bytes.
    const bool has_snap = m.type == raft::MessageType::kSnapshot;
    uint32_t n = 3 + (m.term != 0) + (m.log_term != 0) + (m.index != 0) + (m.commit != 0) +
                 !m.entries.empty() + m.reject + (m.reject_hint != 0) + (m.round != 0) +
                 m.transfer + m.quiet + m.lease + !m.context.empty() + has_snap + (m.offset != 0) +
                 !m.data.empty() + m.done;
    FrameWriter w(out);
    w.pk().pack_map(n);
    pack_uint(w, "type", static_cast<uint8_t>(m.type));
    pack_uint(w, "from", m.from);
    pack_uint(w, "to", m.to);
    if (m.term) pack_uint(w, "term", m.term);
    if (m.log_term) pack_uint(w, "log_term", m.log_term);
    if (m.index) pack_uint(w, "index", m.index);
    if (m.commit) pack_uint(w, "commit", m.commit);
    if (!m.entries.empty()) {
        size_t total = 0;
        for (const auto& e : m.entries)
            total += kEntryHeader + e.data.size();
        w.str("ents");
        w.pk().pack_bin(static_cast<uint32_t>(total));
        // Each record's header is copied; its payload is shared with the log when large
        // (OutBuffer::append), so replicating an entry does not copy its bytes.
        for (const auto& e : m.entries) {
            char h[kEntryHeader];
            put_be(h, e.index, 8);
            put_be(h + 8, e.term, 8);
            h[16] = static_cast<char>(e.type);
            put_be(h + 17, e.data.size(), 4);
            out.write(h, sizeof h);
            out.append(e.data);
        }
    }
    if (m.reject) pack_bool(w, "reject", true);
    if (m.reject_hint) pack_uint(w, "hint", m.reject_hint);
    if (m.round) pack_uint(w, "round", m.round);
    if (m.transfer) pack_bool(w, "transfer", true);
    if (m.quiet) pack_bool(w, "quiet", true);
    if (m.lease) pack_bool(w, "lease", true);
    if (!m.context.empty()) pack_bin(w, "ctx", m.context);
    if (has_snap) {
        w.str("snap");
        w.pk().pack_map(3);
        pack_uint(w, "index", m.snapshot.index);
        pack_uint(w, "term", m.snapshot.term);
        pack_bin(w, "conf", raft::encode_conf_state(m.snapshot.conf));
    }
    if (m.offset) pack_uint(w, "offset", m.offset);
    if (!m.data.empty()) pack_bin(w, "data", m.data);
    if (m.done) pack_bool(w, "done", true);
    return w.finish();
}

Result<raft::Message> decode_message(const ipc::Frame& f) {
    raft::Message m;
    if (Status st = read_fields(f.root(), kMessageFields, m); !st) return st;
    if (f.find("type") == nullptr) return Status::invalid_argument("peer frame: missing 'type'");
    return m;
}

void encode_forward(ipc::OutBuffer& out, const Forward& f) {
    FrameWriter w(out);
    const bool prop = f.kind != Forward::Kind::kResult;
    w.pk().pack_map(prop ? 3 : (f.ok ? 5 + !f.data.empty() : 5));
    pack_uint(w, "fwd", static_cast<uint8_t>(f.kind));
    pack_uint(w, "seq", f.seq);
    if (prop)
        pack_bin(w, "data", f.data);
    else {
        pack_bool(w, "ok", f.ok);
        if (f.ok) {
            pack_uint(w, "index", f.index);
            pack_uint(w, "term", f.term);
            if (!f.data.empty()) pack_bin(w, "data", f.data);
        } else {
            pack_str(w, "code", f.code);
            pack_str(w, "msg", f.message);
        }
    }
    w.finish();
}

bool is_forward(const ipc::Frame& f) {
    return f.find("fwd") != nullptr;
}

Result<Forward> decode_forward(const ipc::Frame& f) {
    Forward fw;
    if (Status st = read_fields(f.root(), kForwardFields, fw); !st) return st;
    return fw;
}

}  // namespace raftd::daemon
