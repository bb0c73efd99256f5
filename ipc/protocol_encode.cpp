// Reply, error, event and request encoders (the encode half of protocol.h). Key order on
// the wire is fixed as written here; docs/protocol.md shows the same order, but readers
// must not depend on it.
#include "ipc/protocol.h"

namespace raftd::ipc {

namespace {

// Packs map headers and keys; counts entries so a header always matches its body.
class MapWriter {
  public:
    explicit MapWriter(FrameWriter& w) : w_(w) {}
    FrameWriter& w() { return w_; }
    msgpack::packer<OutBuffer>& pk() { return w_.pk(); }
    MapWriter& key(std::string_view k) {
        w_.str(k);
        return *this;
    }
    void u64(std::string_view k, uint64_t v) { key(k).pk().pack_uint64(v); }
    void boolean(std::string_view k, bool v) {
        key(k);
        v ? pk().pack_true() : pk().pack_false();
    }
    void str(std::string_view k, std::string_view v) { key(k).w_.str(v); }

  private:
    FrameWriter& w_;
};

void pack_membership_list(FrameWriter& w, const Membership& m) {
    w.pk().pack_array(static_cast<uint32_t>(m.members.size()));
    for (const MemberInfo& mi : m.members) {
        uint32_t n = 3 + (m.joint ? 1 : 0) + (mi.progress ? 1 : 0);
        w.pk().pack_map(n);
        MapWriter mw(w);
        mw.u64("node", mi.node);
        mw.str("addr", mi.addr);
        mw.boolean("voter", mi.voter);
        if (m.joint) mw.boolean("outgoing", mi.outgoing);
        if (mi.progress) {
            mw.key("progress");
            w.pk().pack_map(3);
            mw.u64("match", mi.progress->match);
            mw.u64("next", mi.progress->next);
            mw.str("state", mi.progress->state);
        }
    }
}

// {"id": id, "ok": true, <extra fields>}: the caller packs `extra` entries after this.
MapWriter begin_ok(FrameWriter& w, uint64_t id, uint32_t extra) {
    w.pk().pack_map(2 + extra);
    MapWriter m(w);
    m.u64("id", id);
    m.boolean("ok", true);
    return m;
}

std::string_view entry_type_name(raft::EntryType t) {
    switch (t) {
        case raft::EntryType::kData:
            return "data";
        case raft::EntryType::kNoop:
            return "noop";
        case raft::EntryType::kConfig:
            return "config";
    }
    return "data";
}

}  // namespace

void encode_reply(OutBuffer& out, uint64_t id, const OkReply&) {
    FrameWriter w(out);
    begin_ok(w, id, 0);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const HelloReply& r) {
    FrameWriter w(out);
    MapWriter m = begin_ok(w, id, 5);
    m.u64("version", r.version);
    m.u64("node_id", r.node_id);
    m.str("cluster", r.cluster);
    m.u64("max_frame", r.max_frame);
    m.u64("max_entry", r.max_entry);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const ProposeReply& r) {
    FrameWriter w(out);
    MapWriter m = begin_ok(w, id, 2);
    m.u64("index", r.index);
    m.u64("term", r.term);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const ReadIndexReply& r) {
    FrameWriter w(out);
    begin_ok(w, id, 1).u64("index", r.index);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const SnapshotReply& r) {
    FrameWriter w(out);
    MapWriter m = begin_ok(w, id, r.index ? 1 : 0);
    if (r.index) m.u64("index", *r.index);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const StatusReply& r) {
    FrameWriter w(out);
    MapWriter m = begin_ok(w, id, 13);
    m.u64("node_id", r.node_id);
    m.str("cluster", r.cluster);
    m.str("role", r.role);
    m.u64("term", r.term);
    m.u64("leader", r.leader);
    m.u64("commit", r.commit);
    m.u64("first_index", r.first_index);
    m.u64("last_index", r.last_index);
    m.u64("snapshot_index", r.snapshot_index);
    m.u64("wal_syncs", r.wal_syncs);
    m.key("members");
    pack_membership_list(w, r.membership);
    m.boolean("joint", r.membership.joint);
    m.str("version", r.version);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const Membership& r) {
    FrameWriter w(out);
    MapWriter m = begin_ok(w, id, 2);
    m.key("members");
    pack_membership_list(w, r);
    m.boolean("joint", r.joint);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const TransferLeaderReply& r) {
    FrameWriter w(out);
    begin_ok(w, id, 1).u64("leader", r.leader);
    w.finish();
}

void encode_reply(OutBuffer& out, uint64_t id, const CampaignReply& r) {
    FrameWriter w(out);
    begin_ok(w, id, 1).u64("term", r.term);
    w.finish();
}

namespace {
void pack_error_map(MapWriter& m, const Error& e) {
    m.w().pk().pack_map(e.leader ? 3 : 2);
    m.str("code", error_code_name(e.code));
    m.str("message", e.message);
    if (e.leader) {
        m.key("leader");
        m.w().pk().pack_map(2);
        m.u64("node", e.leader->node);
        m.str("addr", e.leader->addr);
    }
}
}  // namespace

void encode_error(OutBuffer& out, std::optional<uint64_t> id, const Error& e) {
    FrameWriter w(out);
    w.pk().pack_map(3);
    MapWriter m(w);
    m.key("id");
    id ? w.pk().pack_uint64(*id) : w.pk().pack_nil();
    m.boolean("ok", false);
    m.key("error");
    pack_error_map(m, e);
    w.finish();
}

void encode_entry_event(OutBuffer& out, uint64_t sub, const raft::Entry& e,
                        const Membership* config) {
    const bool with_members = e.type == raft::EntryType::kConfig && config;
    FrameWriter w(out);
    w.pk().pack_map(with_members ? 8 : 6);
    MapWriter m(w);
    m.str("ev", "entry");
    m.u64("id", sub);
    m.u64("index", e.index);
    m.u64("term", e.term);
    m.str("type", entry_type_name(e.type));
    m.key("data");
    w.bin(e.data);
    if (with_members) {
        m.key("members");
        pack_membership_list(w, *config);
        m.boolean("joint", config->joint);
    }
    w.finish();
}

void encode_snapshot_event(OutBuffer& out, uint64_t sub, const SnapshotChunk& c) {
    FrameWriter w(out);
    w.pk().pack_map(9);
    MapWriter m(w);
    m.str("ev", "snapshot");
    m.u64("id", sub);
    m.u64("index", c.index);
    m.u64("term", c.term);
    m.u64("offset", c.offset);
    m.key("data");
    w.bin(c.data);
    m.boolean("done", c.done);
    m.key("members");
    pack_membership_list(w, c.membership);
    m.boolean("joint", c.membership.joint);
    w.finish();
}

void encode_end_event(OutBuffer& out, uint64_t sub, const Error& why) {
    FrameWriter w(out);
    w.pk().pack_map(3);
    MapWriter m(w);
    m.str("ev", "end");
    m.u64("id", sub);
    m.key("error");
    pack_error_map(m, why);
    w.finish();
}

namespace {

// Counts and packs a request's fields (after "op" and "id").
struct RequestFields {
    FrameWriter& w;
    uint32_t count(const HelloRequest& r) { return 1 + (r.name ? 1 : 0); }
    uint32_t count(const ProposeRequest&) { return 1; }
    uint32_t count(const SubscribeRequest& r) { return r.from ? 1 : 0; }
    uint32_t count(const UnsubscribeRequest&) { return 1; }
    uint32_t count(const ReadIndexRequest& r) { return r.lease ? 1 : 0; }
    uint32_t count(const SnapshotRequest&) { return 4; }
    uint32_t count(const AddMemberRequest&) { return 3; }
    uint32_t count(const RemoveMemberRequest&) { return 1; }
    uint32_t count(const PromoteRequest&) { return 1; }
    uint32_t count(const DemoteRequest&) { return 1; }
    uint32_t count(const ChangeMembersRequest&) { return 2; }
    uint32_t count(const TransferLeaderRequest&) { return 1; }
    template <typename T>
    uint32_t count(const T&) {
        return 0;
    }

    void pack(const HelloRequest& r) {
        MapWriter m(w);
        m.u64("version", r.version);
        if (r.name) m.str("name", *r.name);
    }
    void pack(const ProposeRequest& r) {
        MapWriter(w).key("data");
        w.bin(r.data);
    }
    void pack(const SubscribeRequest& r) {
        if (r.from) MapWriter(w).u64("from", *r.from);
    }
    void pack(const UnsubscribeRequest& r) { MapWriter(w).u64("sub", r.sub); }
    void pack(const ReadIndexRequest& r) {
        if (r.lease) MapWriter(w).boolean("lease", true);
    }
    void pack(const SnapshotRequest& r) {
        MapWriter m(w);
        m.u64("index", r.index);
        m.u64("offset", r.offset);
        m.key("data");
        w.bin(r.data);
        m.boolean("done", r.done);
    }
    void pack(const AddMemberRequest& r) {
        MapWriter m(w);
        m.u64("node", r.node);
        m.str("addr", r.addr);
        m.boolean("learner", r.learner);
    }
    void pack(const RemoveMemberRequest& r) { MapWriter(w).u64("node", r.node); }
    void pack(const PromoteRequest& r) { MapWriter(w).u64("node", r.node); }
    void pack(const DemoteRequest& r) { MapWriter(w).u64("node", r.node); }
    void pack(const ChangeMembersRequest& r) {
        MapWriter m(w);
        m.key("add");
        w.pk().pack_array(static_cast<uint32_t>(r.add.size()));
        for (const MemberSpec& s : r.add) {
            w.pk().pack_map(3);
            m.u64("node", s.node);
            m.str("addr", s.addr);
            m.boolean("learner", s.learner);
        }
        m.key("remove");
        w.pk().pack_array(static_cast<uint32_t>(r.remove.size()));
        for (raft::NodeId n : r.remove)
            w.pk().pack_uint64(n);
    }
    void pack(const TransferLeaderRequest& r) { MapWriter(w).u64("to", r.to); }
    template <typename T>
    void pack(const T&) {}
};

}  // namespace

void encode_request(OutBuffer& out, uint64_t id, const Request& r) {
    FrameWriter w(out);
    RequestFields rf{w};
    std::visit(
        [&](const auto& req) {
            w.pk().pack_map(2 + rf.count(req));
            MapWriter m(w);
            m.str("op", op_name(r));
            m.u64("id", id);
            rf.pack(req);
        },
        r);
    w.finish();
}

}  // namespace raftd::ipc
