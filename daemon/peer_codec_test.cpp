// The peer wire format round-trips every field and refuses malformed frames.
#include <doctest/doctest.h>

#include "daemon/peer_codec.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

ipc::Frame only_frame(ipc::FrameDecoder& dec, const ipc::OutBuffer& out) {
    dec.feed(out.flatten());
    auto d = dec.next();
    REQUIRE(d.kind == ipc::FrameDecoder::Kind::kFrame);
    return std::move(d.frame);
}

}  // namespace

TEST_CASE("every message field survives the peer wire format") {
    raft::Message m;
    m.type = raft::MessageType::kAppend;
    m.from = 1;
    m.to = 3;
    m.term = 7;
    m.log_term = 6;
    m.index = 41;
    m.commit = 40;
    m.entries.push_back({42, 7, raft::EntryType::kData, raft::Payload(std::string(5000, 'x'))});
    m.entries.push_back({43, 7, raft::EntryType::kNoop, raft::Payload()});
    m.entries.push_back({44, 7, raft::EntryType::kConfig, raft::Payload("cfg")});
    m.reject = true;
    m.reject_hint = 12;
    m.round = 99;
    m.transfer = true;
    m.quiet = true;
    m.context = std::string("\0ctx", 4);
    m.snapshot.index = 30;
    m.snapshot.term = 5;
    m.snapshot.conf.voters = {1, 2, 3};
    m.snapshot.conf.addrs = {{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}, {3, "127.0.0.1:3"}};
    m.offset = 1024;
    m.data = "snapshot bytes";
    m.done = true;
    // Only kSnapshot carries snapshot metadata.
    raft::Message snap = m;
    snap.type = raft::MessageType::kSnapshot;

    for (const raft::Message& want : {m, snap}) {
        ipc::OutBuffer out;
        encode_message(out, want);
        ipc::FrameDecoder dec;
        auto f = only_frame(dec, out);
        auto got = decode_message(f);
        REQUIRE(got);
        raft::Message expect = want;
        if (expect.type != raft::MessageType::kSnapshot) expect.snapshot = {};
        CHECK(*got == expect);
    }
}

TEST_CASE("a heartbeat is small: zero fields are left out") {
    raft::Message m;
    m.type = raft::MessageType::kHeartbeat;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    ipc::OutBuffer out;
    size_t len = encode_message(out, m);
    CHECK(len == 23);  // the worked example of docs/peer-protocol.md
    ipc::FrameDecoder dec;
    auto got = decode_message(only_frame(dec, out));
    REQUIRE(got);
    CHECK(*got == m);
}

TEST_CASE("malformed messages are refused with the field named") {
    auto decode_map = [](auto&& fill) {
        ipc::OutBuffer out;
        {
            ipc::FrameWriter w(out);
            fill(w);
            w.finish();
        }
        ipc::FrameDecoder dec;
        dec.feed(out.flatten());
        auto d = dec.next();
        REQUIRE(d.kind == ipc::FrameDecoder::Kind::kFrame);
        return decode_message(d.frame).status();
    };
    Status st = decode_map([](ipc::FrameWriter& w) {
        w.pk().pack_map(1);
        w.str("from");
        w.pk().pack(1);
    });
    CHECK(st.message().find("type") != std::string::npos);
    st = decode_map([](ipc::FrameWriter& w) {
        w.pk().pack_map(1);
        w.str("type");
        w.pk().pack(200);
    });
    CHECK(st.message().find("type") != std::string::npos);
    st = decode_map([](ipc::FrameWriter& w) {
        w.pk().pack_map(2);
        w.str("type");
        w.pk().pack(5);
        w.str("term");
        w.str("seven");
    });
    CHECK(st.message().find("'term'") != std::string::npos);
    // An entry record whose length runs past the end of the list.
    st = decode_map([](ipc::FrameWriter& w) {
        w.pk().pack_map(2);
        w.str("type");
        w.pk().pack(5);
        w.str("ents");
        std::string rec(21, '\0');
        rec[16] = 1;
        rec[20] = 50;  // claims 50 bytes of data, has none
        w.bin(rec);
    });
    CHECK(st.message().find("ents") != std::string::npos);
}

TEST_CASE("handshake frames round-trip") {
    ipc::OutBuffer out;
    encode_hello(out, PeerHello{kPeerProtocolVersion, "c1", 2, 3, "127.0.0.1:7002"});
    ipc::FrameDecoder dec;
    auto h = decode_hello(only_frame(dec, out));
    REQUIRE(h);
    CHECK(h->version == kPeerProtocolVersion);
    CHECK(h->cluster == "c1");
    CHECK(h->from == 2);
    CHECK(h->to == 3);
    CHECK(h->addr == "127.0.0.1:7002");

    ipc::OutBuffer out2;
    encode_welcome(out2, PeerWelcome{false, 3, "c1", "wrong cluster"});
    ipc::FrameDecoder dec2;
    auto w = decode_welcome(only_frame(dec2, out2));
    REQUIRE(w);
    CHECK_FALSE(w->ok);
    CHECK(w->node == 3);
    CHECK(w->error == "wrong cluster");
    // A raft message is not a handshake.
    ipc::OutBuffer out3;
    encode_message(out3, raft::Message{});
    ipc::FrameDecoder dec3;
    CHECK_FALSE(decode_hello(only_frame(dec3, out3)));
}

TEST_CASE("handshake frames carry incarnations and an older node's frames read as zero") {
    PeerHello hello{kPeerProtocolVersion, "c1", 3, 1, "127.0.0.1:7003"};
    hello.incarnation = 0xfedcba9876543210ull;
    hello.bootstrapping = true;
    ipc::OutBuffer out;
    encode_hello(out, hello);
    ipc::FrameDecoder dec;
    auto h = decode_hello(only_frame(dec, out));
    REQUIRE(h);
    CHECK(h->incarnation == 0xfedcba9876543210ull);
    CHECK(h->bootstrapping);
    CHECK(h->from == 3);

    PeerWelcome refusal{false, 1, "c1", "node 3 lost its data directory"};
    refusal.incarnation = 42;
    refusal.known_incarnation = 7;
    ipc::OutBuffer out2;
    encode_welcome(out2, refusal);
    ipc::FrameDecoder dec2;
    auto w = decode_welcome(only_frame(dec2, out2));
    REQUIRE(w);
    CHECK_FALSE(w->ok);
    CHECK(w->incarnation == 42);
    CHECK(w->known_incarnation == 7);
    CHECK(w->error == "node 3 lost its data directory");

    // Frames of a node that predates incarnations: the new keys are absent and read as 0 /
    // false (the receiver then neither checks nor records anything).
    ipc::OutBuffer out3;
    {
        ipc::FrameWriter fw(out3);
        fw.pk().pack_map(5);
        fw.str("raftd_peer");
        fw.pk().pack(1);
        fw.str("cluster");
        fw.str("c1");
        fw.str("from");
        fw.pk().pack(2);
        fw.str("to");
        fw.pk().pack(1);
        fw.str("addr");
        fw.str("127.0.0.1:7002");
        fw.finish();
    }
    ipc::FrameDecoder dec3;
    auto old = decode_hello(only_frame(dec3, out3));
    REQUIRE(old);
    CHECK(old->incarnation == 0);
    CHECK_FALSE(old->bootstrapping);
    // An accepted welcome never carries known_incarnation, even if set by mistake.
    PeerWelcome ok{true, 1, "c1", ""};
    ok.known_incarnation = 9;
    ipc::OutBuffer out4;
    encode_welcome(out4, ok);
    ipc::FrameDecoder dec4;
    auto okw = decode_welcome(only_frame(dec4, out4));
    REQUIRE(okw);
    CHECK(okw->ok);
    CHECK(okw->known_incarnation == 0);
    // A mistyped field is named.
    ipc::OutBuffer out5;
    {
        ipc::FrameWriter fw(out5);
        fw.pk().pack_map(2);
        fw.str("raftd_peer");
        fw.pk().pack(1);
        fw.str("incarnation");
        fw.str("many");
        fw.finish();
    }
    ipc::FrameDecoder dec5;
    auto bad = decode_hello(only_frame(dec5, out5));
    REQUIRE_FALSE(bad);
    CHECK(bad.status().message().find("'incarnation'") != std::string::npos);
}
