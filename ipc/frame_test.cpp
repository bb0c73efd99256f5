#include "ipc/frame.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using raftd::ipc::decode_frame_body;
using raftd::ipc::FrameDecoder;
using raftd::ipc::FrameLimits;
using raftd::ipc::FrameWriter;
using raftd::ipc::OutBuffer;
using Kind = FrameDecoder::Kind;

namespace {

std::string be32(uint32_t n) {
    return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
            static_cast<char>(n)};
}

std::string framed(const std::string& body) {
    return be32(static_cast<uint32_t>(body.size())) + body;
}

// {"op": "ping", "id": id}
std::string ping_frame(uint64_t id) {
    OutBuffer out;
    FrameWriter w(out);
    w.pk().pack_map(2);
    w.str("op");
    w.str("ping");
    w.str("id");
    w.pk().pack(id);
    w.finish();
    return out.flatten();
}

std::string propose_frame(uint64_t id, const std::string& data) {
    OutBuffer out;
    FrameWriter w(out);
    w.pk().pack_map(3);
    w.str("op");
    w.str("propose");
    w.str("id");
    w.pk().pack(id);
    w.str("data");
    w.bin(raftd::raft::Payload(data));
    w.finish();
    return out.flatten();
}

uint64_t id_of(const raftd::ipc::Frame& f) {
    const msgpack::object* id = f.find("id");
    REQUIRE(id != nullptr);
    return id->as<uint64_t>();
}

// Feeds `stream` in the given chunk sizes and collects the ids of every decoded frame.
std::vector<uint64_t> decode_in_chunks(const std::string& stream, const std::vector<size_t>& cuts) {
    FrameDecoder d;
    std::vector<uint64_t> ids;
    size_t pos = 0;
    for (size_t c : cuts) {
        d.feed(std::string_view(stream).substr(pos, c));
        pos += c;
        for (;;) {
            auto r = d.next();
            if (r.kind == Kind::kNeedMore) break;
            REQUIRE(r.kind == Kind::kFrame);
            ids.push_back(id_of(r.frame));
        }
    }
    CHECK(pos == stream.size());
    CHECK(d.buffered() == 0);
    return ids;
}

}  // namespace

TEST_CASE("ping_frame_has_the_documented_bytes") {
    // docs/protocol.md, "A worked example": {"op":"ping","id":1}
    const std::string expect("\x00\x00\x00\x0d\x82\xa2op\xa4ping\xa2id\x01", 17);
    CHECK(ping_frame(1) == expect);
}

TEST_CASE("frames_fed_byte_by_byte_decode_in_order") {
    std::string stream;
    for (uint64_t i = 1; i <= 20; ++i)
        stream += (i % 3 == 0) ? propose_frame(i, std::string(i * 100, 'x')) : ping_frame(i);
    auto ids = decode_in_chunks(stream, std::vector<size_t>(stream.size(), 1));
    REQUIRE(ids.size() == 20);
    for (uint64_t i = 0; i < 20; ++i)
        CHECK(ids[i] == i + 1);
}

TEST_CASE("frames_split_at_random_points_decode_identically") {
    std::mt19937_64 rng(7);
    std::string stream;
    for (uint64_t i = 1; i <= 200; ++i)
        stream += propose_frame(i, std::string(rng() % 5000, static_cast<char>(i)));
    for (int round = 0; round < 50; ++round) {
        std::vector<size_t> cuts;
        size_t left = stream.size();
        while (left) {
            size_t c = std::min<size_t>(left, 1 + rng() % 9000);
            cuts.push_back(c);
            left -= c;
        }
        auto ids = decode_in_chunks(stream, cuts);
        REQUIRE(ids.size() == 200);
        CHECK(ids.back() == 200);
    }
}

TEST_CASE("proposal_data_references_the_decoder_buffer_without_a_copy") {
    const std::string data(100000, 'q');
    FrameDecoder d;
    std::string f = propose_frame(9, data);
    // The zero-copy path: read straight into prepare()'s span.
    size_t pos = 0;
    while (pos < f.size()) {
        auto [p, room] = d.prepare(4096);
        size_t k = std::min(room, f.size() - pos);
        std::memcpy(p, f.data() + pos, k);
        d.commit(k);
        pos += k;
    }
    auto r = d.next();
    REQUIRE(r.kind == Kind::kFrame);
    const msgpack::object* bin = r.frame.find("data");
    REQUIRE(bin != nullptr);
    REQUIRE(bin->type == msgpack::type::BIN);
    CHECK(std::string_view(bin->via.bin.ptr, bin->via.bin.size) == data);
    // The bytes live inside the frame body, i.e. inside the decoder's buffer.
    auto body = r.frame.body();
    CHECK(bin->via.bin.ptr >= body.data());
    CHECK(bin->via.bin.ptr + bin->via.bin.size <= body.data() + body.size());
}

TEST_CASE("length_above_max_frame_is_too_large_before_the_body_is_buffered") {
    FrameDecoder d(FrameLimits{.max_frame = 1000});
    d.feed(be32(1001));
    auto r = d.next();
    CHECK(r.kind == Kind::kTooLarge);
    CHECK(r.error.find("1001") != std::string::npos);
    // Sticky: the stream cannot be resynchronised.
    d.feed(ping_frame(1));
    CHECK(d.next().kind == Kind::kTooLarge);
    // Nothing close to the declared size was ever reserved.
    FrameDecoder big;
    big.feed(be32(0xffffffff));
    CHECK(big.next().kind == Kind::kTooLarge);
    CHECK(big.capacity() < 1u << 20);
}

TEST_CASE("zero_length_is_rejected") {
    FrameDecoder d;
    d.feed(be32(0));
    CHECK(d.next().kind == Kind::kTooLarge);
}

TEST_CASE("a_stalled_half_frame_holds_at_most_one_frames_buffer") {
    FrameDecoder d;
    std::string f = propose_frame(1, std::string(8u << 20, 'z'));
    d.feed(std::string_view(f).substr(0, 5000));
    CHECK(d.next().kind == Kind::kNeedMore);
    auto [p, room] = d.prepare(65536);
    (void)p;
    // Large frames grow with the bytes that arrive, not with the declared length.
    CHECK(d.capacity() <= (2u << 20));
    CHECK(room >= 1);
}

TEST_CASE("invalid_msgpack_non_maps_and_trailing_bytes_are_bad_frames") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {std::string("\x81\xa1k\xc1", 4), "0xc1"},
        {std::string("\x93\x01\x02\x03", 4), "not a map"},
        {std::string("\xa3"
                     "abc",
                     4),
         "not a map"},
        {std::string("\x81\x01\x02", 3), "key is not a string"},
        {std::string("\x81\xa1k\x02\x00", 5), "trailing"},
        {std::string("\x82\xa1k\x02", 4), "truncated"},
        {std::string("\x81\xa1k\xc4\x10", 5), "truncated"},
        {std::string("\x81\xa1k\xdd\xff\xff\xff\xff", 8), "truncated"},
    };
    for (const auto& [body, why] : cases) {
        CAPTURE(why);
        FrameDecoder d;
        d.feed(framed(body) + ping_frame(5));
        auto r = d.next();
        CHECK(r.kind == Kind::kBadFrame);
        CHECK(r.error.find(why) != std::string::npos);
        // Framing is intact, so the decoder itself can go on.
        auto n = d.next();
        REQUIRE(n.kind == Kind::kFrame);
        CHECK(id_of(n.frame) == 5);
    }
}

TEST_CASE("nesting_and_value_count_limits_are_enforced") {
    std::string deep = "\x81\xa1k";
    for (int i = 0; i < 40; ++i)
        deep += "\x91";
    deep += "\x00";
    CHECK(!decode_frame_body(deep));
    // 70000 nils in one array: more values than the default limit.
    std::string many = "\x81\xa1k\xdd" + be32(70000) + std::string(70000, '\xc0');
    auto r = decode_frame_body(many);
    REQUIRE(!r);
    CHECK(r.status().message().find("values") != std::string::npos);
    FrameLimits roomy;
    roomy.max_values = 100000;
    CHECK(decode_frame_body(many, roomy));
}

TEST_CASE("random_garbage_never_crashes_the_decoder") {
    std::mt19937_64 rng(11);
    for (int round = 0; round < 2000; ++round) {
        FrameDecoder d(FrameLimits{.max_frame = 4096});
        std::string junk(rng() % 300, '\0');
        for (char& c : junk)
            c = static_cast<char>(rng());
        if (round % 2) junk.replace(0, std::min<size_t>(4, junk.size()), be32(junk.size() / 2));
        d.feed(junk);
        // Every result other than "need more" or "too large" (which end the stream) must
        // consume bytes, so the loop ends within as many steps as there are bytes.
        bool ended = false;
        for (size_t i = 0; i <= junk.size() + 1 && !ended; ++i) {
            const size_t before = d.buffered();
            auto r = d.next();
            ended = r.kind == Kind::kNeedMore || r.kind == Kind::kTooLarge;
            if (!ended) REQUIRE(d.buffered() < before);
            CHECK(d.buffered() <= junk.size());
        }
        CHECK(ended);
    }
}

TEST_CASE("out_buffer_shares_large_payloads_and_batches_frames") {
    OutBuffer out;
    raftd::raft::Payload big(std::string(5000, 'b'));
    for (int i = 0; i < 3; ++i) {
        FrameWriter w(out);
        w.pk().pack_map(1);
        w.str("data");
        w.bin(big);
        w.finish();
    }
    CHECK(out.frames() == 3);
    auto pieces = out.pieces();
    int shared = 0;
    for (auto v : pieces)
        shared += (v.data() == big.data());
    CHECK(shared == 3);
    FrameDecoder d;
    d.feed(out.flatten());
    for (int i = 0; i < 3; ++i) {
        auto r = d.next();
        REQUIRE(r.kind == Kind::kFrame);
        const msgpack::object* b = r.frame.find("data");
        REQUIRE(b);
        CHECK(std::string_view(b->via.bin.ptr, b->via.bin.size) == big.view());
    }
    CHECK(d.next().kind == Kind::kNeedMore);
}

TEST_CASE("trim_releases_the_buffer_of_an_idle_decoder") {
    FrameDecoder d;
    d.feed(ping_frame(1));
    REQUIRE(d.next().kind == Kind::kFrame);
    CHECK(d.capacity() > 0);
    d.trim();
    CHECK(d.capacity() == 0);
    d.feed(ping_frame(2));
    auto r = d.next();
    REQUIRE(r.kind == Kind::kFrame);
    CHECK(id_of(r.frame) == 2);
}
