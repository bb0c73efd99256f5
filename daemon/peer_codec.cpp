// Peer frames: see peer_codec.h and docs/peer-protocol.md.
#include "daemon/peer_codec.h"

#include <cstring>

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

void pack_uint(FrameWriter& w, std::string_view key, uint64_t v) {
    w.str(key);
    w.pk().pack_uint64(v);
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

}  // namespace

void encode_hello(ipc::OutBuffer& out, const PeerHello& h) {
    FrameWriter w(out);
    w.pk().pack_map(5 + (h.incarnation != 0) + h.bootstrapping);
    pack_uint(w, "raftd_peer", h.version);
    w.str("cluster");
    w.str(h.cluster);
    pack_uint(w, "from", h.from);
    pack_uint(w, "to", h.to);
    w.str("addr");
    w.str(h.addr);
    if (h.incarnation) pack_uint(w, "incarnation", h.incarnation);
    if (h.bootstrapping) {
        w.str("bootstrapping");
        w.pk().pack(true);
    }
    w.finish();
}

Result<PeerHello> decode_hello(const ipc::Frame& f) {
    PeerHello h;
    h.version = 0;
    const object& root = f.root();
    bool have_version = false;
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        std::string_view k = key_of(kv.key);
        std::string_view s;
        if (k == "raftd_peer") {
            if (!get_uint(kv.val, h.version)) return field_error(k, "uint");
            have_version = true;
        } else if (k == "cluster") {
            if (!get_bytes(kv.val, s)) return field_error(k, "str");
            h.cluster = s;
        } else if (k == "from") {
            if (!get_uint(kv.val, h.from)) return field_error(k, "uint");
        } else if (k == "to") {
            if (!get_uint(kv.val, h.to)) return field_error(k, "uint");
        } else if (k == "addr") {
            if (!get_bytes(kv.val, s)) return field_error(k, "str");
            h.addr = s;
        } else if (k == "incarnation") {
            if (!get_uint(kv.val, h.incarnation)) return field_error(k, "uint");
        } else if (k == "bootstrapping") {
            if (!get_bool(kv.val, h.bootstrapping)) return field_error(k, "bool");
        }
    }
    if (!have_version) return Status::invalid_argument("not a raftd peer handshake");
    return h;
}

void encode_welcome(ipc::OutBuffer& out, const PeerWelcome& w) {
    FrameWriter fw(out);
    fw.pk().pack_map((w.ok ? 3 : 4) + (w.incarnation != 0) + (!w.ok && w.known_incarnation != 0));
    fw.str("ok");
    fw.pk().pack(w.ok);
    pack_uint(fw, "node", w.node);
    fw.str("cluster");
    fw.str(w.cluster);
    if (w.incarnation) pack_uint(fw, "incarnation", w.incarnation);
    if (!w.ok) {
        fw.str("error");
        fw.str(w.error);
        if (w.known_incarnation) pack_uint(fw, "known_incarnation", w.known_incarnation);
    }
    fw.finish();
}

Result<PeerWelcome> decode_welcome(const ipc::Frame& f) {
    PeerWelcome w;
    const object& root = f.root();
    bool have_ok = false;
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        std::string_view k = key_of(kv.key);
        std::string_view s;
        if (k == "ok") {
            if (!get_bool(kv.val, w.ok)) return field_error(k, "bool");
            have_ok = true;
        } else if (k == "node") {
            if (!get_uint(kv.val, w.node)) return field_error(k, "uint");
        } else if (k == "cluster") {
            if (!get_bytes(kv.val, s)) return field_error(k, "str");
            w.cluster = s;
        } else if (k == "error") {
            if (!get_bytes(kv.val, s)) return field_error(k, "str");
            w.error = s;
        } else if (k == "incarnation") {
            if (!get_uint(kv.val, w.incarnation)) return field_error(k, "uint");
        } else if (k == "known_incarnation") {
            if (!get_uint(kv.val, w.known_incarnation)) return field_error(k, "uint");
        }
    }
    if (!have_ok) return Status::invalid_argument("not a raftd peer handshake reply");
    return w;
}

size_t encode_message(ipc::OutBuffer& out, const raft::Message& m) {
    // Zero-valued fields are left out (the receiver's default is zero), so a heartbeat is a
    // few dozen bytes.
    const bool has_snap = m.type == raft::MessageType::kSnapshot;
    uint32_t n = 3 + (m.term != 0) + (m.log_term != 0) + (m.index != 0) + (m.commit != 0) +
                 !m.entries.empty() + m.reject + (m.reject_hint != 0) + (m.round != 0) +
                 m.transfer + m.quiet + !m.context.empty() + has_snap + (m.offset != 0) +
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
    if (m.reject) {
        w.str("reject");
        w.pk().pack_true();
    }
    if (m.reject_hint) pack_uint(w, "hint", m.reject_hint);
    if (m.round) pack_uint(w, "round", m.round);
    if (m.transfer) {
        w.str("transfer");
        w.pk().pack_true();
    }
    if (m.quiet) {
        w.str("quiet");
        w.pk().pack_true();
    }
    if (!m.context.empty()) {
        w.str("ctx");
        w.bin(m.context);
    }
    if (has_snap) {
        w.str("snap");
        w.pk().pack_map(3);
        pack_uint(w, "index", m.snapshot.index);
        pack_uint(w, "term", m.snapshot.term);
        w.str("conf");
        w.bin(raft::encode_conf_state(m.snapshot.conf));
    }
    if (m.offset) pack_uint(w, "offset", m.offset);
    if (!m.data.empty()) {
        w.str("data");
        w.bin(m.data);
    }
    if (m.done) {
        w.str("done");
        w.pk().pack_true();
    }
    return w.finish();
}

Result<raft::Message> decode_message(const ipc::Frame& f) {
    raft::Message m;
    const object& root = f.root();
    bool have_type = false;
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        std::string_view k = key_of(kv.key);
        const object& v = kv.val;
        std::string_view s;
        uint64_t u = 0;
        if (k == "type") {
            if (!get_uint(v, u) || u < 1 || u > raft::kMaxMessageType)
                return field_error(k, "a message type (1..13)");
            m.type = static_cast<raft::MessageType>(u);
            have_type = true;
        } else if (k == "from") {
            if (!get_uint(v, m.from)) return field_error(k, "uint");
        } else if (k == "to") {
            if (!get_uint(v, m.to)) return field_error(k, "uint");
        } else if (k == "term") {
            if (!get_uint(v, m.term)) return field_error(k, "uint");
        } else if (k == "log_term") {
            if (!get_uint(v, m.log_term)) return field_error(k, "uint");
        } else if (k == "index") {
            if (!get_uint(v, m.index)) return field_error(k, "uint");
        } else if (k == "commit") {
            if (!get_uint(v, m.commit)) return field_error(k, "uint");
        } else if (k == "ents") {
            if (v.type != msgpack::type::BIN) return field_error(k, "bin");
            if (Status st =
                    decode_entries(std::string_view(v.via.bin.ptr, v.via.bin.size), m.entries);
                !st)
                return st;
        } else if (k == "reject") {
            if (!get_bool(v, m.reject)) return field_error(k, "bool");
        } else if (k == "hint") {
            if (!get_uint(v, m.reject_hint)) return field_error(k, "uint");
        } else if (k == "round") {
            if (!get_uint(v, m.round)) return field_error(k, "uint");
        } else if (k == "transfer") {
            if (!get_bool(v, m.transfer)) return field_error(k, "bool");
        } else if (k == "quiet") {
            if (!get_bool(v, m.quiet)) return field_error(k, "bool");
        } else if (k == "ctx") {
            if (!get_bytes(v, s)) return field_error(k, "bin");
            m.context = s;
        } else if (k == "snap") {
            if (Status st = decode_snapshot_meta(v, m.snapshot); !st) return st;
        } else if (k == "offset") {
            if (!get_uint(v, m.offset)) return field_error(k, "uint");
        } else if (k == "data") {
            if (!get_bytes(v, s)) return field_error(k, "bin");
            m.data = s;
        } else if (k == "done") {
            if (!get_bool(v, m.done)) return field_error(k, "bool");
        }
        // Unknown keys are ignored: a later minor revision may add optional fields.
    }
    if (!have_type) return Status::invalid_argument("peer frame: missing 'type'");
    return m;
}

void encode_forward(ipc::OutBuffer& out, const Forward& f) {
    FrameWriter w(out);
    const bool prop = f.kind != Forward::Kind::kResult;
    w.pk().pack_map(prop ? 3 : (f.ok ? 5 + !f.data.empty() : 5));
    pack_uint(w, "fwd", static_cast<uint8_t>(f.kind));
    pack_uint(w, "seq", f.seq);
    if (prop) {
        w.str("data");
        w.bin(f.data);
    } else {
        w.str("ok");
        w.pk().pack(f.ok);
        if (f.ok) {
            pack_uint(w, "index", f.index);
            pack_uint(w, "term", f.term);
            if (!f.data.empty()) {
                w.str("data");
                w.bin(f.data);
            }
        } else {
            w.str("code");
            w.str(f.code);
            w.str("msg");
            w.str(f.message);
        }
    }
    w.finish();
}

bool is_forward(const ipc::Frame& f) {
    return f.find("fwd") != nullptr;
}

Result<Forward> decode_forward(const ipc::Frame& f) {
    Forward fw;
    const object& root = f.root();
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        std::string_view k = key_of(kv.key);
        const object& v = kv.val;
        std::string_view s;
        uint64_t u = 0;
        if (k == "fwd") {
            if (!get_uint(v, u) || u < 1 || u > 3) return field_error(k, "1, 2 or 3");
            fw.kind = static_cast<Forward::Kind>(u);
        } else if (k == "seq") {
            if (!get_uint(v, fw.seq)) return field_error(k, "uint");
        } else if (k == "data") {
            if (!get_bytes(v, s)) return field_error(k, "bin");
            fw.data = raft::Payload(s.data(), s.size());
        } else if (k == "ok") {
            if (!get_bool(v, fw.ok)) return field_error(k, "bool");
        } else if (k == "index") {
            if (!get_uint(v, fw.index)) return field_error(k, "uint");
        } else if (k == "term") {
            if (!get_uint(v, fw.term)) return field_error(k, "uint");
        } else if (k == "code") {
            if (!get_bytes(v, s)) return field_error(k, "str");
            fw.code = s;
        } else if (k == "msg") {
            if (!get_bytes(v, s)) return field_error(k, "str");
            fw.message = s;
        }
    }
    return fw;
}

}  // namespace raftd::daemon
