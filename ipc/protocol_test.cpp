#include "ipc/protocol.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

using namespace raftd::ipc;
using raftd::raft::Payload;

namespace {

// Decodes the single frame in `out` and keeps its bytes alive alongside.
struct Decoded {
    std::string bytes;
    Frame frame;
};

Decoded decode_one(const OutBuffer& out) {
    Decoded d;
    d.bytes = out.flatten();
    REQUIRE(d.bytes.size() >= 4);
    REQUIRE(read_be32(d.bytes.data()) == d.bytes.size() - 4);
    auto r = decode_frame_body(std::string_view(d.bytes).substr(4));
    REQUIRE(r.is_ok());
    d.frame = std::move(r).value();
    return d;
}

Parsed round_trip(uint64_t id, const Request& req, ParseLimits lim = {}) {
    OutBuffer out;
    encode_request(out, id, req);
    Decoded d = decode_one(out);
    return parse_request(d.frame, lim);  // Payloads are copies: safe after `d` dies
}

// Builds a request frame by hand: {"op": op, "id": id, <extra packed by fill>}.
template <typename Fill>
Decoded raw_request(std::string_view op, uint32_t extra, Fill fill, bool with_id = true) {
    OutBuffer out;
    FrameWriter w(out);
    w.pk().pack_map(1 + (with_id ? 1 : 0) + extra);
    w.str("op");
    w.str(op);
    if (with_id) {
        w.str("id");
        w.pk().pack_uint64(77);
    }
    fill(w);
    w.finish();
    return decode_one(out);
}

const msgpack::object& field(const Frame& f, std::string_view k) {
    const msgpack::object* o = f.find(k);
    REQUIRE_MESSAGE(o != nullptr, "missing key " << k);
    return *o;
}

std::string_view sv(const msgpack::object& o) {
    return o.type == msgpack::type::BIN ? std::string_view(o.via.bin.ptr, o.via.bin.size)
                                        : std::string_view(o.via.str.ptr, o.via.str.size);
}

}  // namespace

TEST_CASE("every_op_parses_back_to_the_request_that_was_encoded") {
    {
        auto p = round_trip(1, HelloRequest{1, "app"});
        REQUIRE(p.ok());
        CHECK(*p.id == 1);
        auto& h = std::get<HelloRequest>(*p.request);
        CHECK(h.version == 1);
        CHECK(h.name == "app");
    }
    CHECK(std::holds_alternative<PingRequest>(*round_trip(2, PingRequest{}).request));
    {
        auto p = round_trip(3, ProposeRequest{Payload(std::string("abc\0def", 7))});
        REQUIRE(p.ok());
        CHECK(std::get<ProposeRequest>(*p.request).data.view() == std::string_view("abc\0def", 7));
    }
    CHECK(std::get<SubscribeRequest>(*round_trip(4, SubscribeRequest{5}).request).from == 5u);
    CHECK(!std::get<SubscribeRequest>(*round_trip(4, SubscribeRequest{}).request).from);
    CHECK(std::get<UnsubscribeRequest>(*round_trip(5, UnsubscribeRequest{4}).request).sub == 4);
    CHECK(std::holds_alternative<ReadIndexRequest>(*round_trip(6, ReadIndexRequest{}).request));
    {
        auto p = round_trip(7, SnapshotRequest{10, 4096, Payload("chunk"), true});
        REQUIRE(p.ok());
        auto& s = std::get<SnapshotRequest>(*p.request);
        CHECK(s.index == 10);
        CHECK(s.offset == 4096);
        CHECK(s.data.view() == "chunk");
        CHECK(s.done);
    }
    CHECK(std::holds_alternative<StatusRequest>(*round_trip(8, StatusRequest{}).request));
    CHECK(std::holds_alternative<MembersRequest>(*round_trip(9, MembersRequest{}).request));
    {
        auto p = round_trip(10, AddMemberRequest{4, "10.0.0.4:7000", true});
        REQUIRE(p.ok());
        auto& a = std::get<AddMemberRequest>(*p.request);
        CHECK(a.node == 4);
        CHECK(a.addr == "10.0.0.4:7000");
        CHECK(a.learner);
    }
    CHECK(std::get<RemoveMemberRequest>(*round_trip(11, RemoveMemberRequest{3}).request).node == 3);
    CHECK(std::get<PromoteRequest>(*round_trip(12, PromoteRequest{3}).request).node == 3);
    CHECK(std::get<DemoteRequest>(*round_trip(13, DemoteRequest{2}).request).node == 2);
    {
        ChangeMembersRequest c;
        c.add = {{5, "h5:1", false}, {6, "[::1]:2", true}};
        c.remove = {1, 2};
        auto p = round_trip(14, c);
        REQUIRE(p.ok());
        auto& r = std::get<ChangeMembersRequest>(*p.request);
        REQUIRE(r.add.size() == 2);
        CHECK(r.add[1].node == 6);
        CHECK(r.add[1].addr == "[::1]:2");
        CHECK(r.add[1].learner);
        CHECK(r.remove == std::vector<raftd::raft::NodeId>{1, 2});
    }
    CHECK(std::get<TransferLeaderRequest>(*round_trip(15, TransferLeaderRequest{2}).request).to ==
          2);
    CHECK(std::holds_alternative<CampaignRequest>(*round_trip(16, CampaignRequest{}).request));
}

TEST_CASE("a propose session key is both client and seq, each at least 1") {
    auto keyed = round_trip(3, ProposeRequest{Payload(std::string("d")), {9, 4}});
    REQUIRE(keyed.ok());
    CHECK(std::get<ProposeRequest>(*keyed.request).session == raftd::raft::SessionKey{9, 4});
    auto only = [](std::string_view key, uint64_t v) {
        return parse_request(raw_request("propose", 2, [&](FrameWriter& w) {
                                 w.str("data");
                                 w.bin(std::string_view("d"));
                                 w.str(key);
                                 w.pk().pack_uint64(v);
                             }).frame);
    };
    CHECK(only("client", 3).error.message ==
          "missing field 'seq': a session key needs both client and seq");
    CHECK(only("seq", 3).error.message ==
          "missing field 'client': a session key needs both client and seq");
    auto zero = parse_request(raw_request("propose", 3, [](FrameWriter& w) {
                                  w.str("data");
                                  w.bin(std::string_view("d"));
                                  w.str("client");
                                  w.pk().pack_uint64(0);
                                  w.str("seq");
                                  w.pk().pack_uint64(1);
                              }).frame);
    CHECK(zero.error.code == ErrorCode::kBadRequest);
    CHECK(zero.error.message == "field 'client' must be at least 1");

    OutBuffer dup;
    encode_reply(dup, 2, ProposeReply{7, 3, true});
    CHECK(decode_propose_reply(decode_one(dup).frame.root()).duplicate);
    OutBuffer ev;
    encode_entry_event(
        ev, 5, raftd::raft::Entry{8, 3, raftd::raft::EntryType::kData, Payload("app"), {9, 4}},
        nullptr);
    const Decoded d = decode_one(ev);  // the event's views point into its bytes
    auto e = decode_event(d.frame.root());
    REQUIRE(e);
    CHECK(e->data == "app");
    CHECK(e->client == 9);
    CHECK(e->seq == 4);
}

TEST_CASE("wrong_field_types_are_bad_requests_naming_the_field_and_echoing_the_id") {
    auto d = raw_request("propose", 1, [](FrameWriter& w) {
        w.str("data");
        w.str("text, not bin");
    });
    auto p = parse_request(d.frame);
    REQUIRE(!p.ok());
    CHECK(p.id == 77u);
    CHECK(p.error.code == ErrorCode::kBadRequest);
    CHECK(p.error.message == "field 'data' must be a bin, got str");

    auto d2 = raw_request("subscribe", 1, [](FrameWriter& w) {
        w.str("from");
        w.pk().pack_int64(-3);
    });
    auto p2 = parse_request(d2.frame);
    CHECK(p2.error.message == "field 'from' must be an unsigned integer, got negative integer");

    auto d3 = raw_request("change_members", 2, [](FrameWriter& w) {
        w.str("add");
        w.pk().pack_array(1);
        w.pk().pack_map(2);
        w.str("node");
        w.pk().pack_uint64(4);
        w.str("addr");
        w.pk().pack_uint64(9);
        w.str("remove");
        w.pk().pack_array(0);
    });
    CHECK(parse_request(d3.frame).error.message ==
          "field 'add[0].addr' must be a str, got unsigned integer");

    auto d4 = raw_request("add_member", 2, [](FrameWriter& w) {
        w.str("node");
        w.pk().pack_uint64(4);
        w.str("addr");
        w.str("no-port");
    });
    CHECK(parse_request(d4.frame).error.message == "field 'addr' must be \"host:port\"");

    auto d5 = raw_request("transfer_leader", 0, [](FrameWriter&) {});
    CHECK(parse_request(d5.frame).error.message == "missing field 'to'");
}

TEST_CASE("unknown_op_is_unknown_op_with_the_id") {
    auto d = raw_request("frobnicate", 0, [](FrameWriter&) {});
    auto p = parse_request(d.frame);
    REQUIRE(!p.ok());
    CHECK(p.error.code == ErrorCode::kUnknownOp);
    CHECK(p.id == 77u);
    CHECK(p.error.message == "unknown op 'frobnicate'");
}

TEST_CASE("missing_or_bad_id_cannot_be_echoed") {
    auto d = raw_request(
        "ping", 0, [](FrameWriter&) {}, false);
    auto p = parse_request(d.frame);
    CHECK(!p.id);
    CHECK(p.error.code == ErrorCode::kBadRequest);
    CHECK(p.error.message == "missing field 'id'");

    OutBuffer out;
    FrameWriter w(out);
    w.pk().pack_map(2);
    w.str("op");
    w.str("ping");
    w.str("id");
    w.str("seven");
    w.finish();
    auto d2 = decode_one(out);
    auto p2 = parse_request(d2.frame);
    CHECK(!p2.id);
    CHECK(p2.error.message == "field 'id' must be an unsigned integer, got str");
}

TEST_CASE("repeated_keys_and_oversized_data_are_refused") {
    auto d = raw_request("ping", 1, [](FrameWriter& w) {
        w.str("id");
        w.pk().pack_uint64(78);
    });
    auto p = parse_request(d.frame);
    CHECK(p.error.code == ErrorCode::kBadRequest);
    CHECK(p.error.message == "field 'id' appears more than once");

    auto big = round_trip(9, ProposeRequest{Payload(std::string(101, 'x'))}, ParseLimits{100});
    CHECK(big.error.code == ErrorCode::kTooLarge);
    CHECK(big.id == 9u);
    CHECK(round_trip(9, ProposeRequest{Payload(std::string(100, 'x'))}, ParseLimits{100}).ok());
}

TEST_CASE("unknown_fields_are_ignored_for_forward_compatibility") {
    auto d = raw_request("ping", 1, [](FrameWriter& w) {
        w.str("future_field");
        w.pk().pack_array(0);
    });
    CHECK(parse_request(d.frame).ok());
}

TEST_CASE("timeout_ms_is_read_for_requests_that_wait_for_a_leader_and_lease_for_read_index") {
    auto d = raw_request("read_index", 2, [](FrameWriter& w) {
        w.str("lease");
        w.pk().pack_true();
        w.str("timeout_ms");
        w.pk().pack_uint64(250);
    });
    auto p = parse_request(d.frame);
    REQUIRE(p.ok());
    CHECK(std::get<ReadIndexRequest>(*p.request).lease);
    CHECK(p.timeout_ms == 250u);
    CHECK(waits_for_leader(*p.request));
    CHECK(!std::get<ReadIndexRequest>(*round_trip(1, ReadIndexRequest{}).request).lease);
    CHECK(std::get<ReadIndexRequest>(*round_trip(1, ReadIndexRequest{true}).request).lease);
    CHECK(!round_trip(1, ReadIndexRequest{}).timeout_ms);

    auto bad = raw_request("propose", 2, [](FrameWriter& w) {
        w.str("data");
        w.pk().pack_bin(0);
        w.str("timeout_ms");
        w.str("soon");
    });
    CHECK(parse_request(bad.frame).error.message ==
          "field 'timeout_ms' must be an unsigned integer, got str");
    auto lease = raw_request("read_index", 1, [](FrameWriter& w) {
        w.str("lease");
        w.pk().pack_uint64(1);
    });
    CHECK(parse_request(lease.frame).error.message ==
          "field 'lease' must be a bool, got unsigned integer");
    // Requests that never wait for a leader ignore the field, like any unknown one.
    auto ping = raw_request("ping", 1, [](FrameWriter& w) {
        w.str("timeout_ms");
        w.str("whatever");
    });
    auto pp = parse_request(ping.frame);
    REQUIRE(pp.ok());
    CHECK(!waits_for_leader(*pp.request));
    CHECK(!pp.timeout_ms);
    for (const Request& r :
         {Request{ProposeRequest{}}, Request{AddMemberRequest{}}, Request{RemoveMemberRequest{}},
          Request{PromoteRequest{}}, Request{DemoteRequest{}}, Request{ChangeMembersRequest{}},
          Request{TransferLeaderRequest{}}})
        CHECK(waits_for_leader(r));
    for (const Request& r : {Request{SubscribeRequest{}}, Request{StatusRequest{}},
                             Request{CampaignRequest{}}, Request{SnapshotRequest{}}})
        CHECK(!waits_for_leader(r));
}

TEST_CASE("error_reply_has_the_documented_shape") {
    OutBuffer out;
    encode_error(out, 12, Error{ErrorCode::kUnavailable, "no leader", LeaderHint{2, "h2:7000"}});
    auto d = decode_one(out);
    CHECK(field(d.frame, "id").via.u64 == 12);
    CHECK(field(d.frame, "ok").via.boolean == false);
    const msgpack::object& e = field(d.frame, "error");
    REQUIRE(e.type == msgpack::type::MAP);
    CHECK(e.via.map.size == 3);
    CHECK(sv(e.via.map.ptr[0].val) == "UNAVAILABLE");
    CHECK(sv(e.via.map.ptr[1].val) == "no leader");
    CHECK(e.via.map.ptr[2].val.via.map.ptr[0].val.via.u64 == 2);

    OutBuffer out2;
    encode_error(out2, std::nullopt, Error{ErrorCode::kBadFrame, "x", {}});
    auto d2 = decode_one(out2);
    CHECK(field(d2.frame, "id").type == msgpack::type::NIL);
    CHECK(field(d2.frame, "error").via.map.size == 2);
}

TEST_CASE("error_codes_round_trip_through_their_names") {
    for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
        auto c = static_cast<ErrorCode>(i);
        CHECK(error_code_from_name(error_code_name(c)) == c);
    }
    CHECK(error_code_name(ErrorCode::kIndeterminate) == "INDETERMINATE");
    CHECK(!error_code_from_name("NOPE"));
}

TEST_CASE("entry_and_snapshot_events_carry_the_documented_fields") {
    Membership conf{{{1, "a:1", true, false, {}}, {2, "b:2", false, false, {}}}, false};
    OutBuffer out;
    encode_entry_event(
        out, 5, raftd::raft::Entry{7, 3, raftd::raft::EntryType::kConfig, Payload("cc")}, &conf);
    auto d = decode_one(out);
    CHECK(sv(field(d.frame, "ev")) == "entry");
    CHECK(field(d.frame, "id").via.u64 == 5);
    CHECK(field(d.frame, "index").via.u64 == 7);
    CHECK(field(d.frame, "term").via.u64 == 3);
    CHECK(sv(field(d.frame, "type")) == "config");
    CHECK(sv(field(d.frame, "data")) == "cc");
    CHECK(field(d.frame, "members").via.array.size == 2);
    CHECK(field(d.frame, "joint").via.boolean == false);

    OutBuffer noop;
    encode_entry_event(noop, 5, raftd::raft::Entry{8, 3, raftd::raft::EntryType::kNoop, {}},
                       nullptr);
    auto dn = decode_one(noop);
    CHECK(sv(field(dn.frame, "type")) == "noop");
    CHECK(field(dn.frame, "data").type == msgpack::type::BIN);
    CHECK(dn.frame.find("members") == nullptr);

    OutBuffer snap;
    encode_snapshot_event(snap, 5, SnapshotChunk{40, 2, 0, Payload("state"), true, conf});
    auto ds = decode_one(snap);
    CHECK(sv(field(ds.frame, "ev")) == "snapshot");
    CHECK(field(ds.frame, "index").via.u64 == 40);
    CHECK(field(ds.frame, "offset").via.u64 == 0);
    CHECK(field(ds.frame, "done").via.boolean);
    CHECK(sv(field(ds.frame, "data")) == "state");

    OutBuffer end;
    encode_end_event(end, 5, Error{ErrorCode::kShuttingDown, "bye", {}});
    auto de = decode_one(end);
    CHECK(sv(field(de.frame, "ev")) == "end");
}

// A leader's status reply with one member and its progress.
static StatusReply leader_status() {
    StatusReply s;
    s.node_id = 1;
    s.cluster = "c";
    s.role = "leader";
    s.term = 4;
    s.leader = 1;
    s.commit = 10;
    s.first_index = 1;
    s.last_index = 11;
    s.membership.members = {{1, "a:1", true, false, Progress{11, 12, "replicate"}}};
    s.version = "0.1";
    s.wal_syncs = 77;
    return s;
}

TEST_CASE("status_reply_lists_members_with_progress_on_the_leader") {
    StatusReply s = leader_status();
    OutBuffer out;
    encode_reply(out, 3, s);
    auto d = decode_one(out);
    CHECK(d.frame.root().via.map.size == 15);
    CHECK(field(d.frame, "wal_syncs").as<uint64_t>() == 77);
    const msgpack::object& m = field(d.frame, "members").via.array.ptr[0];
    CHECK(m.via.map.size == 4);
    CHECK(sv(m.via.map.ptr[3].key) == "progress");
    CHECK(sv(field(d.frame, "role")) == "leader");
}

TEST_CASE("replies_match_the_worked_example_byte_for_byte") {
    auto hex = [](const std::string& s) {
        std::string h;
        char b[4];
        for (unsigned char c : s) {
            std::snprintf(b, sizeof b, "%02x", c);
            h += b;
        }
        return h;
    };
    OutBuffer ping;
    encode_reply(ping, 1, OkReply{});
    CHECK(hex(ping.flatten()) == "0000000982a2696401a26f6bc3");
    OutBuffer prop_req;
    encode_request(prop_req, 2, ProposeRequest{Payload("hi")});
    CHECK(hex(prop_req.flatten()) == "0000001983a26f70a770726f706f7365a2696402a464617461c4026869");
    OutBuffer prop;
    encode_reply(prop, 2, ProposeReply{7, 3});
    CHECK(hex(prop.flatten()) == "0000001684a2696402a26f6bc3a5696e64657807a47465726d03");
    OutBuffer err;
    encode_error(err, std::nullopt, Error{ErrorCode::kTooLarge, "x", {}});
    CHECK(
        hex(err.flatten())
            .starts_with("0000002983a26964c0a26f6bc2a56572726f7282a4636f6465a9544f4f5f4c41524745"));
}

// The decoders are what the C++ client, raftbench and the daemon's forwarding read replies
// with: every reply and event the server encodes must decode back to what was encoded.
TEST_CASE("replies_and_events_decode_back_to_what_was_encoded") {
    Membership conf{{{1, "a:1", true, true, Progress{9, 10, "replicate"}},
                     {2, "b:2", false, false, std::nullopt}},
                    true};

    OutBuffer st_out;
    StatusReply s = leader_status();
    s.snapshot_index = 2;
    s.membership = conf;
    encode_reply(st_out, 3, s);
    auto ds = decode_one(st_out);
    ReplyHead h = decode_reply_head(ds.frame.root());
    CHECK(h.id == 3u);
    CHECK(h.ok);
    CHECK_FALSE(h.event);
    auto back = decode_status_reply(ds.frame.root());
    REQUIRE(back);
    CHECK(back->node_id == 1);
    CHECK(back->cluster == "c");
    CHECK(back->role == "leader");
    CHECK(back->term == 4);
    CHECK(back->leader == 1);
    CHECK(back->commit == 10);
    CHECK(back->last_index == 11);
    CHECK(back->snapshot_index == 2);
    CHECK(back->wal_syncs == 77);
    CHECK(back->membership == conf);
    CHECK(back->version == "0.1");

    OutBuffer m_out;
    encode_reply(m_out, 4, conf);
    auto dm = decode_one(m_out);
    auto m = decode_membership(dm.frame.root());
    REQUIRE(m);
    CHECK(*m == conf);

    OutBuffer hello_out;
    encode_reply(hello_out, 1, HelloReply{1, 3, "c", 4096, 1024});
    auto dh = decode_one(hello_out);
    HelloReply hr = decode_hello_reply(dh.frame.root());
    CHECK(hr.node_id == 3);
    CHECK(hr.cluster == "c");
    CHECK(hr.max_frame == 4096);
    CHECK(hr.max_entry == 1024);

    OutBuffer p_out;
    encode_reply(p_out, 2, ProposeReply{7, 3});
    auto dp = decode_one(p_out);
    CHECK(decode_propose_reply(dp.frame.root()).index == 7);
    CHECK(decode_propose_reply(dp.frame.root()).term == 3);

    OutBuffer e_out;
    encode_error(e_out, 12, Error{ErrorCode::kUnavailable, "no leader", LeaderHint{2, "h2:7000"}});
    auto de = decode_one(e_out);
    CHECK_FALSE(decode_reply_head(de.frame.root()).ok);
    std::string wire;
    CHECK(decode_error(de.frame.root(), &wire) ==
          Error{ErrorCode::kUnavailable, "no leader", LeaderHint{2, "h2:7000"}});
    CHECK(wire == "UNAVAILABLE");

    OutBuffer ev_out;
    encode_entry_event(
        ev_out, 5, raftd::raft::Entry{7, 3, raftd::raft::EntryType::kConfig, Payload("cc")}, &conf);
    auto dev = decode_one(ev_out);
    CHECK(decode_reply_head(dev.frame.root()).event);
    auto ev = decode_event(dev.frame.root());
    REQUIRE(ev);
    CHECK(ev->kind == Event::Kind::kEntry);
    CHECK(ev->sub == 5);
    CHECK(ev->index == 7);
    CHECK(ev->type == "config");
    CHECK(ev->data == "cc");
    REQUIRE(ev->membership);
    CHECK(*ev->membership == conf);

    OutBuffer snap_out;
    encode_snapshot_event(snap_out, 5, SnapshotChunk{40, 2, 8, Payload("state"), true, conf});
    auto dsn = decode_one(snap_out);
    auto sn = decode_event(dsn.frame.root());
    REQUIRE(sn);
    CHECK(sn->kind == Event::Kind::kSnapshot);
    CHECK(sn->offset == 8);
    CHECK(sn->done);
    CHECK(sn->data == "state");
    CHECK(*sn->membership == conf);

    OutBuffer end_out;
    encode_end_event(end_out, 5, Error{ErrorCode::kShuttingDown, "bye", {}});
    auto dend = decode_one(end_out);
    auto en = decode_event(dend.frame.root());
    REQUIRE(en);
    CHECK(en->kind == Event::Kind::kEnd);
    CHECK(en->error == Error{ErrorCode::kShuttingDown, "bye", {}});
    CHECK(en->error_code == "SHUTTING_DOWN");
}

TEST_CASE("replies_decode_leniently_but_a_membership_needs_its_members") {
    // An unknown error code keeps its wire string; a missing map is an INTERNAL error.
    OutBuffer out;
    {
        FrameWriter w(out);
        w.pk().pack_map(3);
        w.str("id");
        w.pk().pack_uint64(1);
        w.str("ok");
        w.pk().pack_false();
        w.str("error");
        w.pk().pack_map(1);
        w.str("code");
        w.str("FUTURE_CODE");
        w.finish();
    }
    auto d = decode_one(out);
    std::string wire;
    CHECK(decode_error(d.frame.root(), &wire).code == ErrorCode::kInternal);
    CHECK(wire == "FUTURE_CODE");
    OutBuffer bare;
    encode_reply(bare, 1, OkReply{});
    auto db = decode_one(bare);
    CHECK(decode_error(db.frame.root()).message == "error reply without an error map");
    CHECK_FALSE(decode_membership(db.frame.root()));
    CHECK_FALSE(decode_status_reply(db.frame.root()));
    // A newer server's extra fields and an older one's missing ones still decode.
    CHECK(decode_hello_reply(db.frame.root()).max_frame == 0);
    CHECK(find_uint(db.frame.root(), "id") == 1u);
    CHECK_FALSE(find_uint(db.frame.root(), "ok"));
}
