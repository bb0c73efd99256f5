// The peer wire format round-trips every field and refuses malformed frames.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <variant>

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

// What the other end reads: `decode` of the one frame `encode(out, v)` wrote.
template <class Encode, class Decode, class V>
auto round_trip(Encode encode, Decode decode, const V& v) {
    ipc::OutBuffer out;
    encode(out, v);
    ipc::FrameDecoder dec;
    return decode(only_frame(dec, out));
}

// A value of a frame map written by hand: a uint, a str, or bin bytes.
struct Bin {
    std::string bytes;
};
using Value = std::variant<uint64_t, std::string, Bin>;

// `decode` of a frame written by hand with exactly `fields`, as an older or a broken peer
// might send it.
template <class Decode>
auto decode_written(Decode decode, std::initializer_list<std::pair<std::string, Value>> fields) {
    ipc::OutBuffer out;
    {
        ipc::FrameWriter w(out);
        w.pk().pack_map(static_cast<uint32_t>(fields.size()));
        for (const auto& [key, value] : fields) {
            w.str(key);
            if (const auto* u = std::get_if<uint64_t>(&value)) w.pk().pack_uint64(*u);
            if (const auto* str = std::get_if<std::string>(&value)) w.str(*str);
            if (const auto* bin = std::get_if<Bin>(&value)) w.bin(bin->bytes);
        }
        w.finish();
    }
    ipc::FrameDecoder dec;
    return decode(only_frame(dec, out));
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
        auto got = round_trip(encode_message, decode_message, want);
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
    Status st = decode_written(decode_message, {{"from", 1u}}).status();
    CHECK(st.message().find("type") != std::string::npos);
    st = decode_written(decode_message, {{"type", 200u}}).status();
    CHECK(st.message().find("type") != std::string::npos);
    st = decode_written(decode_message, {{"type", 5u}, {"term", "seven"}}).status();
    CHECK(st.message().find("'term'") != std::string::npos);
    // An entry record whose length runs past the end of the list.
    std::string rec(21, '\0');
    rec[16] = 1;
    rec[20] = 50;  // claims 50 bytes of data, has none
    st = decode_written(decode_message, {{"type", 5u}, {"ents", Bin{rec}}}).status();
    CHECK(st.message().find("ents") != std::string::npos);
}

TEST_CASE("handshake frames round-trip") {
    auto h = round_trip(encode_hello, decode_hello,
                        PeerHello{kPeerProtocolVersion, "c1", 2, 3, "127.0.0.1:7002"});
    REQUIRE(h);
    CHECK(h->version == kPeerProtocolVersion);
    CHECK(h->cluster == "c1");
    CHECK(h->from == 2);
    CHECK(h->to == 3);
    CHECK(h->addr == "127.0.0.1:7002");

    auto w =
        round_trip(encode_welcome, decode_welcome, PeerWelcome{false, 3, "c1", "wrong cluster"});
    REQUIRE(w);
    CHECK_FALSE(w->ok);
    CHECK(w->node == 3);
    CHECK(w->error == "wrong cluster");
    // A raft message is not a handshake.
    CHECK_FALSE(round_trip(encode_message, decode_hello, raft::Message{}));
}

TEST_CASE("handshake frames carry incarnations and an older node's frames read as zero") {
    PeerHello hello{kPeerProtocolVersion, "c1", 3, 1, "127.0.0.1:7003"};
    hello.incarnation = 0xfedcba9876543210ull;
    hello.bootstrapping = true;
    auto h = round_trip(encode_hello, decode_hello, hello);
    REQUIRE(h);
    CHECK(h->incarnation == 0xfedcba9876543210ull);
    CHECK(h->bootstrapping);
    CHECK(h->from == 3);

    PeerWelcome refusal{false, 1, "c1", "node 3 lost its data directory"};
    refusal.incarnation = 42;
    refusal.known_incarnation = 7;
    auto w = round_trip(encode_welcome, decode_welcome, refusal);
    REQUIRE(w);
    CHECK_FALSE(w->ok);
    CHECK(w->incarnation == 42);
    CHECK(w->known_incarnation == 7);
    CHECK(w->error == "node 3 lost its data directory");

    // Frames of a node that predates incarnations: the new keys are absent and read as 0 /
    // false (the receiver then neither checks nor records anything).
    auto old = decode_written(decode_hello, {{"raftd_peer", 1u},
                                             {"cluster", "c1"},
                                             {"from", 2u},
                                             {"to", 1u},
                                             {"addr", "127.0.0.1:7002"}});
    REQUIRE(old);
    CHECK(old->incarnation == 0);
    CHECK_FALSE(old->bootstrapping);
    // An accepted welcome never carries known_incarnation, even if set by mistake.
    PeerWelcome ok{true, 1, "c1", ""};
    ok.known_incarnation = 9;
    auto okw = round_trip(encode_welcome, decode_welcome, ok);
    REQUIRE(okw);
    CHECK(okw->ok);
    CHECK(okw->known_incarnation == 0);
    CHECK_FALSE(okw->bootstrapping);
    // An acceptor with an empty store says so (its diallers check their record of it).
    PeerWelcome empty{true, 3, "c1", ""};
    empty.incarnation = 11;
    empty.bootstrapping = true;
    auto ew = round_trip(encode_welcome, decode_welcome, empty);
    REQUIRE(ew);
    CHECK(ew->ok);
    CHECK(ew->bootstrapping);
    CHECK(ew->incarnation == 11);
    // A mistyped field is named.
    auto bad = decode_written(decode_hello, {{"raftd_peer", 1u}, {"incarnation", "many"}});
    REQUIRE_FALSE(bad);
    CHECK(bad.status().message().find("'incarnation'") != std::string::npos);
}
