// The client server over a real Unix socket, against FakeBackend: every op, pipelining and
// order, streams (including snapshot-first), and the bad-input list of docs/protocol.md.
#include "ipc/server.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <thread>

#include "ipc/testing/fake_backend.h"
#include "ipc/testing/raw_client.h"
#include "ipc/testing/server_thread.h"

using namespace raftd;
using namespace raftd::ipc;
using raftd::ipc::testing::Msg;
using raftd::ipc::testing::RawClient;
using raftd::ipc::testing::ServerThread;

namespace {

struct Quiet {
    Quiet() {
        spdlog::set_level(spdlog::level::warn);
        // As in raftd's main: a client closing its socket must not kill the process.
        std::signal(SIGPIPE, SIG_IGN);
    }
} quiet;

// Polls `pred` on the test thread until it holds or the deadline passes.
template <typename F>
bool eventually(F pred, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
}

// The next reply or event, which must arrive: a timeout fails the test here instead of
// dereferencing an empty optional.
Msg reply(RawClient& c) {
    auto m = c.recv();
    REQUIRE_MESSAGE(m, "no frame within the deadline");
    return std::move(*m);
}

ProposeRequest prop(std::string s) {
    return ProposeRequest{raft::Payload(std::move(s))};
}

// {"op": "propose", "id": id, "data": data, "timeout_ms": timeout_ms}
std::string propose_frame(uint64_t id, const std::string& data, uint64_t timeout_ms) {
    msgpack::sbuffer sb;
    msgpack::packer<msgpack::sbuffer> pk(sb);
    pk.pack_map(4);
    pk.pack("op");
    pk.pack("propose");
    pk.pack("id");
    pk.pack_uint64(id);
    pk.pack("data");
    pk.pack_bin(static_cast<uint32_t>(data.size()));
    pk.pack_bin_body(data.data(), static_cast<uint32_t>(data.size()));
    pk.pack("timeout_ms");
    pk.pack_uint64(timeout_ms);
    return RawClient::frame(std::string_view(sb.data(), sb.size()));
}

// Makes the fake node learn of a leader and tells the server, as the daemon does.
void elect(ServerThread& st) {
    st.run([](auto& b, auto& s) {
        b.leader_id = 2;
        s.on_leader_change(LeaderHint{2, "127.0.0.1:7002"});
    });
}

}  // namespace

TEST_CASE("hello_ping_status_members_answer_at_once") {
    ServerThread st;
    REQUIRE(st.listen_status());
    struct stat sb {};
    REQUIRE(::stat(st.path().c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    RawClient c(st.path());
    REQUIRE(c.connected());
    REQUIRE(c.send(1, HelloRequest{1, std::string("t")}));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    CHECK(m->u64("id") == 1);
    CHECK(m->u64("node_id") == 1);
    CHECK(m->str("cluster") == "test");
    CHECK(m->u64("max_frame") == kDefaultMaxFrame);
    REQUIRE(c.send(2, HelloRequest{2, std::nullopt}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "BAD_REQUEST");
    REQUIRE(c.send(3, PingRequest{}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    REQUIRE(c.send(4, StatusRequest{}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->str("role") == "leader");
    REQUIRE(c.send(5, MembersRequest{}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->get("members")->via.array.size == 3);
}

TEST_CASE("pipelined_proposals_commit_in_connection_order") {
    ServerThread st;
    RawClient c(st.path());
    std::string burst;
    for (uint64_t i = 1; i <= 500; ++i) {
        OutBuffer out;
        encode_request(out, i, prop("p" + std::to_string(i)));
        burst += out.flatten();
    }
    REQUIRE(c.send_raw(burst));
    std::map<uint64_t, uint64_t> index_of;
    for (int i = 0; i < 500; ++i) {
        auto m = c.recv();
        REQUIRE(m);
        REQUIRE(m->ok());
        index_of[m->u64("id")] = m->u64("index");
    }
    REQUIRE(index_of.size() == 500);
    for (uint64_t i = 2; i <= 500; ++i)
        CHECK(index_of[i] > index_of[i - 1]);
}

TEST_CASE("replies_to_a_pipelined_burst_are_written_in_few_batches") {
    ServerThread st;
    RawClient c(st.path());
    std::string burst;
    for (uint64_t i = 1; i <= 200; ++i) {
        OutBuffer out;
        encode_request(out, i, PingRequest{});
        burst += out.flatten();
    }
    REQUIRE(c.send_raw(burst));  // ~2.6 KB: one or two reads on the server
    for (int i = 0; i < 200; ++i)
        REQUIRE(c.recv());
    auto s = st.with([](auto&, auto& srv) { return srv.stats(); });
    CHECK(s.frames_out == 200);
    CHECK(s.writes <= 4);  // one gathered uv_write per loop iteration, not one per reply
}

TEST_CASE("proposal_errors_are_passed_through_with_the_leader_hint") {
    ServerThread st;
    st.run([](auto& b, auto& s) {
        b.propose_error = Error{ErrorCode::kUnavailable, "no leader", std::nullopt};
        s.on_leader_change(LeaderHint{2, "127.0.0.1:7002"});
    });
    RawClient c(st.path());
    REQUIRE(c.send(7, prop("x")));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(!m->ok());
    CHECK(m->code() == "UNAVAILABLE");
    // error.leader = {"node": 2, "addr": "127.0.0.1:7002"}
    const msgpack::object* e = m->get("error");
    REQUIRE(e);
    Msg em;
    em.h = msgpack::object_handle(*e, std::unique_ptr<msgpack::zone>());
    const msgpack::object* l = em.get("leader");
    REQUIRE(l);
    Msg lm;
    lm.h = msgpack::object_handle(*l, std::unique_ptr<msgpack::zone>());
    CHECK(lm.u64("node") == 2);
    CHECK(lm.str("addr") == "127.0.0.1:7002");
}

TEST_CASE("subscription_streams_contiguous_entries_then_follows_commits") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        for (int i = 0; i < 10; ++i)
            b.append("e" + std::to_string(i));
        b.commit_to(10);
    });
    RawClient c(st.path());
    REQUIRE(c.send(9, SubscribeRequest{1}));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    for (uint64_t i = 1; i <= 10; ++i) {
        m = c.recv();
        REQUIRE(m);
        CHECK(m->str("ev") == "entry");
        CHECK(m->u64("id") == 9);
        CHECK(m->u64("index") == i);
        CHECK(m->str("data") == "e" + std::to_string(i - 1));
    }
    CHECK(!c.recv(100));  // nothing beyond the commit index
    st.run([](auto& b, auto&) {
        b.append("late");
        b.commit_to(11);
    });
    m = c.recv();
    REQUIRE(m);
    CHECK(m->u64("index") == 11);
    CHECK(m->str("data") == "late");
    // Unsubscribe: the reply, then nothing more for id 9.
    REQUIRE(c.send(10, UnsubscribeRequest{9}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    st.run([](auto& b, auto&) {
        b.append("after");
        b.commit_to(12);
    });
    CHECK(!c.recv(100));
    REQUIRE(c.send(11, UnsubscribeRequest{9}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "NOT_FOUND");
}

TEST_CASE("subscribe_without_from_starts_after_the_commit_index") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        b.append("old");
        b.commit_to(1);
    });
    RawClient c(st.path());
    REQUIRE(c.send(1, SubscribeRequest{}));
    REQUIRE(reply(c).ok());
    REQUIRE(c.send(2, prop("new")));
    // The entry event and the proposal's reply, in either order.
    int seen = 0;
    for (int i = 0; i < 2; ++i) {
        auto m = c.recv();
        REQUIRE(m);
        if (m->has("ev")) {
            CHECK(m->u64("index") == 2);
            CHECK(m->str("data") == "new");
        } else {
            CHECK(m->u64("index") == 2);
        }
        ++seen;
    }
    CHECK(seen == 2);
    REQUIRE(c.send(4, UnsubscribeRequest{1}));
    REQUIRE(reply(c).ok());
    // Beyond the last index + 1: accepted, and the stream waits for that index.
    REQUIRE(c.send(3, SubscribeRequest{4}));
    REQUIRE(reply(c).ok());
    st.run([](auto& b, auto&) {
        b.append("three");
        b.commit_to(3);
    });
    CHECK(!c.recv(100));  // index 3 is below the stream's start
    st.run([](auto& b, auto&) {
        b.append("four");
        b.commit_to(4);
    });
    auto m = reply(c);
    CHECK(m.u64("id") == 3);
    CHECK(m.u64("index") == 4);
    CHECK(m.str("data") == "four");
}

TEST_CASE("subscriber_from_a_compacted_index_gets_the_snapshot_then_entries") {
    ServerThread st;
    std::string big(700 * 1024, 's');
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>('a' + i % 26);
    st.run([&](auto& b, auto&) {
        for (int i = 0; i < 20; ++i)
            b.append("e" + std::to_string(i + 1));
        b.commit_to(20);
        b.install_snapshot(15, big);
    });
    RawClient c(st.path());
    REQUIRE(c.send(1, SubscribeRequest{1}));
    REQUIRE(reply(c).ok());
    std::string got;
    bool done = false;
    int chunks = 0;
    while (!done) {
        auto m = c.recv();
        REQUIRE(m);
        REQUIRE(m->str("ev") == "snapshot");
        CHECK(m->u64("index") == 15);
        CHECK(m->u64("offset") == got.size());
        got += m->str("data");
        done = m->get("done")->via.boolean;
        ++chunks;
    }
    CHECK(got == big);
    CHECK(chunks > 1);
    for (uint64_t i = 16; i <= 20; ++i) {
        auto m = c.recv();
        REQUIRE(m);
        CHECK(m->str("ev") == "entry");
        CHECK(m->u64("index") == i);
    }
}

TEST_CASE("snapshot_installed_mid_stream_is_sent_before_the_entries_after_it") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        b.append("a");
        b.commit_to(1);
    });
    RawClient c(st.path());
    REQUIRE(c.send(1, SubscribeRequest{1}));
    REQUIRE(reply(c).ok());
    REQUIRE(reply(c).u64("index") == 1);
    // The node fell behind and installed a snapshot at 50 from the leader.
    st.run([](auto& b, auto&) { b.install_snapshot(50, "state@50"); });
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->str("ev") == "snapshot");
    CHECK(m->u64("index") == 50);
    CHECK(m->str("data") == "state@50");
    st.run([](auto& b, auto&) {
        b.append("b");
        b.commit_to(51);
    });
    m = c.recv();
    REQUIRE(m);
    CHECK(m->u64("index") == 51);
}

TEST_CASE("slow_subscriber_costs_bounded_memory_and_still_gets_everything") {
    ServerOptions o;
    o.sub_output_bytes = 256 * 1024;
    ServerThread st(o);
    RawClient c(st.path());
    int rcv = 4096;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    REQUIRE(c.send(1, SubscribeRequest{1}));
    // 16 MiB of entries committed while the subscriber reads nothing.
    st.run([](auto& b, auto&) {
        for (int i = 0; i < 4096; ++i)
            b.append(std::string(4096, static_cast<char>('a' + i % 26)));
        b.commit_to(4096);
    });
    // The server fills the socket and its own queue, then stops reading ahead: wait for
    // output to be queued (so the bound below measures something), then for it to settle.
    auto queued = [&] { return st.with([](auto&, auto& s) { return s.stats().queued_bytes; }); };
    REQUIRE(eventually([&] { return queued() > 0; }));
    uint64_t last = 0;
    REQUIRE(eventually([&] {
        uint64_t q = queued();
        bool settled = q == last;
        last = q;
        return settled;
    }));
    CHECK(last > 0);
    CHECK(last <= o.sub_output_bytes + 64 * 1024);
    REQUIRE(reply(c).ok());
    for (uint64_t i = 1; i <= 4096; ++i) {
        auto m = c.recv();
        REQUIRE(m);
        REQUIRE(m->u64("index") == i);
        uint64_t q =
            i % 512 == 0 ? st.with([](auto&, auto& s) { return s.stats().queued_bytes; }) : 0;
        CHECK(q <= o.sub_output_bytes + 64 * 1024);
    }
}

TEST_CASE("snapshot_upload_in_chunks_replies_with_the_index_on_the_last") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        for (int i = 0; i < 5; ++i)
            b.append("x");
        b.commit_to(5);
    });
    RawClient c(st.path());
    REQUIRE(c.send(1, SnapshotRequest{4, 0, raft::Payload(std::string("abc")), false}));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    CHECK(!m->has("index"));
    REQUIRE(c.send(2, SnapshotRequest{4, 5, raft::Payload(std::string("zz")), false}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "BAD_REQUEST");
    REQUIRE(c.send(3, SnapshotRequest{4, 3, raft::Payload(std::string("def")), true}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    CHECK(m->u64("index") == 4);
    auto snap = st.with([](auto& b, auto&) { return b.snap_bytes_; });
    CHECK(snap == "abcdef");
    REQUIRE(c.send(4, SnapshotRequest{9, 0, raft::Payload(), true}));
    CHECK(reply(c).code() == "BAD_REQUEST");  // above the commit index
}

TEST_CASE("membership_transfer_campaign_and_read_index") {
    ServerThread st;
    RawClient c(st.path());
    REQUIRE(c.send(1, AddMemberRequest{4, "127.0.0.1:7004", true}));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->ok());
    CHECK(m->get("members")->via.array.size == 4);
    REQUIRE(c.send(2, AddMemberRequest{4, "127.0.0.1:7004", true}));
    CHECK(reply(c).code() == "BAD_REQUEST");
    REQUIRE(c.send(3, PromoteRequest{4}));
    CHECK(reply(c).ok());
    REQUIRE(c.send(4, RemoveMemberRequest{4}));
    CHECK(reply(c).get("members")->via.array.size == 3);
    REQUIRE(c.send(5, TransferLeaderRequest{2}));
    CHECK(reply(c).u64("leader") == 2);
    REQUIRE(c.send(6, CampaignRequest{}));
    CHECK(reply(c).u64("term") == 4);
    REQUIRE(c.send(7, ReadIndexRequest{}));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->u64("index") == 3);  // three config entries were committed
}

// ---- waiting for a leader (docs/protocol.md 6.7) ----------------------------------------------

TEST_CASE("requests_without_a_leader_wait_for_one_then_run_in_arrival_order") {
    ServerThread st;
    st.run([](auto& b, auto&) { b.leader_id = raft::kNoNode; });
    RawClient c(st.path());
    REQUIRE(c.send(1, prop("a")));
    REQUIRE(c.send(2, ReadIndexRequest{}));
    REQUIRE(c.send(3, prop("b")));
    REQUIRE(c.send(4, AddMemberRequest{4, "127.0.0.1:7004", false}));
    REQUIRE(c.send(5, TransferLeaderRequest{3}));
    REQUIRE(c.send(6, PingRequest{}));  // needs no leader: answered while the others wait
    CHECK(reply(c).u64("id") == 6);
    CHECK(!c.recv(200));
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 0);
    CHECK(st.with([](auto&, auto& s) { return s.stats().waiting; }) == 5);
    elect(st);
    std::map<uint64_t, Msg> got;
    for (int i = 0; i < 5; ++i) {
        Msg m = reply(c);
        CHECK(m.ok());
        got.emplace(m.u64("id"), std::move(m));
    }
    REQUIRE(got.size() == 5);
    CHECK(got[1].u64("index") == 1);
    CHECK(got[2].u64("index") == 1);  // read after "a", before "b"
    CHECK(got[3].u64("index") == 2);
    CHECK(got[5].u64("leader") == 3);
    CHECK(st.with([](auto&, auto& s) { return s.stats().waiting; }) == 0);
}

TEST_CASE("a_request_that_finds_no_leader_in_its_timeout_is_unavailable_and_not_proposed") {
    ServerOptions o;
    o.request_timeout_ms = 60000;
    ServerThread st(o);
    st.run([](auto& b, auto&) { b.leader_id = raft::kNoNode; });
    RawClient c(st.path());
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(c.send_raw(propose_frame(1, "late", 300)));
    REQUIRE(c.send_raw(propose_frame(2, "never", 0)));  // 0: does not wait at all
    Msg m = reply(c);
    CHECK(m.u64("id") == 2);
    CHECK(m.code() == "UNAVAILABLE");
    m = reply(c);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(m.u64("id") == 1);
    CHECK(m.code() == "UNAVAILABLE");
    CHECK(waited >= std::chrono::milliseconds(290));
    CHECK(waited < std::chrono::milliseconds(5000));
    // The default (request_timeout_ms) applies without timeout_ms; a leader arriving in
    // time lets it through, and the expired ones were never proposed.
    REQUIRE(c.send(3, prop("in time")));
    CHECK(!c.recv(100));
    elect(st);
    m = reply(c);
    CHECK(m.u64("id") == 3);
    CHECK(m.u64("index") == 1);
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 1);
}

TEST_CASE("the_leader_wait_is_bounded_in_requests_and_bytes") {
    ServerOptions o;
    o.leader_wait_requests = 2;
    o.leader_wait_bytes = 3000;
    ServerThread st(o);
    st.run([](auto& b, auto&) { b.leader_id = raft::kNoNode; });
    RawClient c(st.path());
    REQUIRE(c.send(1, prop(std::string(2000, 'x'))));
    REQUIRE(c.send(2, prop(std::string(2000, 'y'))));  // over the byte limit
    Msg m = reply(c);
    CHECK(m.u64("id") == 2);
    CHECK(m.code() == "BUSY");
    REQUIRE(c.send(3, prop("small")));
    REQUIRE(c.send(4, prop("one too many")));  // over the count limit
    m = reply(c);
    CHECK(m.u64("id") == 4);
    CHECK(m.code() == "BUSY");
    elect(st);
    CHECK(reply(c).u64("id") == 1);
    CHECK(reply(c).u64("id") == 3);
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 2);
}

TEST_CASE("waiting_requests_of_a_closed_connection_are_dropped_unperformed") {
    ServerThread st;
    st.run([](auto& b, auto&) { b.leader_id = raft::kNoNode; });
    {
        RawClient c(st.path());
        REQUIRE(c.send(1, prop("gone")));
        REQUIRE(eventually(
            [&] { return st.with([](auto&, auto& s) { return s.stats().waiting; }) == 1; }));
    }
    REQUIRE(
        eventually([&] { return st.with([](auto&, auto& s) { return s.stats().waiting; }) == 0; }));
    elect(st);
    RawClient c2(st.path());
    REQUIRE(c2.send(1, prop("here")));
    CHECK(reply(c2).u64("index") == 1);
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 1);
}

TEST_CASE("read_index_passes_the_lease_request_to_the_backend") {
    ServerThread st;
    RawClient c(st.path());
    REQUIRE(c.send(1, ReadIndexRequest{true}));
    CHECK(reply(c).ok());
    CHECK(st.with([](auto& b, auto&) { return b.last_read_lease; }));
    REQUIRE(c.send(2, ReadIndexRequest{}));
    CHECK(reply(c).ok());
    CHECK(!st.with([](auto& b, auto&) { return b.last_read_lease; }));
}

TEST_CASE("subscriptions_per_connection_are_limited") {
    ServerOptions o;
    o.max_subscriptions = 2;
    ServerThread st(o);
    RawClient c(st.path());
    REQUIRE(c.send(1, SubscribeRequest{}));
    CHECK(reply(c).ok());
    REQUIRE(c.send(2, SubscribeRequest{}));
    CHECK(reply(c).ok());
    REQUIRE(c.send(3, SubscribeRequest{}));
    Msg m = reply(c);
    CHECK(m.code() == "BUSY");
    CHECK(m.u64("id") == 3);
    CHECK(st.with([](auto&, auto& s) { return s.stats().subscriptions; }) == 2);
    // Another connection has its own allowance; an ended one frees a place.
    RawClient c2(st.path());
    REQUIRE(c2.send(1, SubscribeRequest{}));
    CHECK(reply(c2).ok());
    REQUIRE(c.send(4, UnsubscribeRequest{1}));
    CHECK(reply(c).ok());
    REQUIRE(c.send(5, SubscribeRequest{}));
    CHECK(reply(c).ok());
}

// ---- bad input ------------------------------------------------------------------------------

TEST_CASE("oversized_length_gets_too_large_then_the_connection_closes") {
    ServerThread st;
    RawClient c(st.path());
    REQUIRE(c.send_raw(std::string("\xff\xff\xff\xff", 4)));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "TOO_LARGE");
    CHECK(m->is_nil("id"));
    CHECK(c.wait_closed());
    RawClient zero(st.path());
    REQUIRE(zero.send_raw(std::string(4, '\0')));
    CHECK(reply(zero).code() == "TOO_LARGE");
    CHECK(zero.wait_closed());
}

TEST_CASE("garbage_wrong_types_unknown_ops_get_errors_and_the_connection_stays") {
    ServerThread st;
    RawClient c(st.path());
    REQUIRE(c.send_raw(RawClient::frame("\xc1\xc1\xc1")));  // never-used msgpack byte
    CHECK(reply(c).code() == "BAD_FRAME");
    REQUIRE(c.send_raw(RawClient::frame("\x93\x01\x02\x03")));  // an array, not a map
    CHECK(reply(c).code() == "BAD_FRAME");
    // {"op": "propose", "id": 5, "data": "str"}
    REQUIRE(
        c.send_raw(RawClient::frame("\x83\xa2op\xa7propose\xa2id\x05\xa4"
                                    "data\xa3str")));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "BAD_REQUEST");
    CHECK(m->u64("id") == 5);
    // {"op": "frobnicate", "id": 6}
    REQUIRE(
        c.send_raw(RawClient::frame("\x82\xa2op\xaa"
                                    "frobnicate\xa2id\x06")));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "UNKNOWN_OP");
    CHECK(m->u64("id") == 6);
    // data above max_entry: TOO_LARGE with the id; the connection stays usable
    REQUIRE(c.send(8, prop(std::string(kDefaultMaxEntry + 1, 'x'))));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "TOO_LARGE");
    CHECK(m->u64("id") == 8);
    REQUIRE(c.send(9, PingRequest{}));
    CHECK(reply(c).ok());
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 0);
}

TEST_CASE("duplicate_ids_in_flight_and_too_many_in_flight_are_refused") {
    ServerOptions o;
    o.max_inflight = 3;
    ServerThread st(o);
    st.run([](auto& b, auto&) { b.auto_commit = false; });
    RawClient c(st.path());
    REQUIRE(c.send(1, prop("a")));
    REQUIRE(c.send(1, prop("b")));
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "BAD_REQUEST");
    REQUIRE(c.send(2, prop("c")));
    REQUIRE(c.send(3, prop("d")));
    REQUIRE(c.send(4, prop("e")));
    m = c.recv();
    REQUIRE(m);
    CHECK(m->code() == "BUSY");
    CHECK(m->u64("id") == 4);
    CHECK(st.with([](auto& b, auto&) { return b.proposals; }) == 3);
    st.run([](auto& b, auto&) { b.commit_to(b.last_index()); });
    for (int i = 0; i < 3; ++i)
        CHECK(reply(c).ok());
}

TEST_CASE("half_frame_and_stall_is_closed_after_the_partial_frame_timeout") {
    ServerOptions o;
    o.partial_frame_timeout_ms = 200;
    ServerThread st(o);
    RawClient c(st.path());
    REQUIRE(c.send_raw(std::string("\x00\x00\x00\x10\x82", 5)));
    CHECK(c.wait_closed(3000));
    // An idle connection with no partial frame is not closed.
    RawClient idle(st.path());
    CHECK(!idle.recv(400));
    CHECK(!idle.eof());
}

TEST_CASE("client_that_never_reads_is_closed_and_others_are_served") {
    ServerOptions o;
    o.max_output_bytes = 64 * 1024;
    o.stall_timeout_ms = 1000;
    ServerThread st(o);
    RawClient bad(st.path());
    int rcv = 4096;
    ::setsockopt(bad.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    // Many status requests (large replies) without reading any.
    std::string burst;
    for (uint64_t i = 1; i <= 20000; ++i) {
        OutBuffer out;
        encode_request(out, i, StatusRequest{});
        burst += out.flatten();
    }
    std::thread writer([&] { (void)bad.send_raw(burst); });
    RawClient good(st.path());
    REQUIRE(good.send(1, PingRequest{}));
    CHECK(reply(good).ok());
    // The bound is measured while the stalled connection is still open: its output passed
    // max_output_bytes (so reading paused), stopped growing, and stays within a reply of it.
    auto stats = [&] { return st.with([](auto&, auto& s) { return s.stats(); }); };
    ServerStats stalled;
    uint64_t last = 0;
    REQUIRE(eventually([&] {
        stalled = stats();
        bool settled = stalled.connections == 2 && stalled.queued_bytes > o.max_output_bytes &&
                       stalled.queued_bytes == last;
        last = stalled.queued_bytes;
        return settled;
    }));
    CHECK(stalled.queued_bytes < 2 * o.max_output_bytes);
    // Then it is closed for making no progress, which frees what it had queued.
    REQUIRE(eventually([&] { return stats().connections == 1; }));
    CHECK(stats().queued_bytes == 0);
    ::shutdown(bad.fd(), SHUT_RDWR);
    writer.join();
    REQUIRE(good.send(2, PingRequest{}));
    CHECK(reply(good).ok());
}

TEST_CASE("thousands_of_connections_opened_and_dropped") {
    ServerThread st;
    for (int i = 0; i < 2000; ++i) {
        RawClient c(st.path());
        REQUIRE(c.connected());
        if (i % 3 == 0) (void)c.send_raw(std::string("\x00\x00\x00\x20\x81", 5));
        if (i % 3 == 1) (void)c.send(1, PingRequest{});
    }
    CHECK(eventually(
        [&] { return st.with([](auto&, auto& s) { return s.stats().connections; }) == 0; }));
    RawClient c(st.path());
    REQUIRE(c.send(1, PingRequest{}));
    CHECK(reply(c).ok());
    CHECK(st.with([](auto&, auto& s) { return s.stats().accepted; }) == 2001);
}

TEST_CASE("half_close_gets_replies_then_the_server_closes") {
    ServerThread st;
    st.run([](auto& b, auto&) { b.auto_commit = false; });
    RawClient c(st.path());
    REQUIRE(c.send(1, prop("a")));
    REQUIRE(c.send(2, SubscribeRequest{}));
    REQUIRE(c.send(3, PingRequest{}));
    ::shutdown(c.fd(), SHUT_WR);
    CHECK(reply(c).ok());  // subscribe
    CHECK(reply(c).ok());  // ping
    CHECK(!c.recv(100));
    st.run([](auto& b, auto&) { b.commit_to(1); });
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->u64("id") == 1);  // the proposal's reply, and no entry event
    CHECK(c.wait_closed());
}

TEST_CASE("peer_not_in_the_allow_list_is_disconnected_without_a_frame") {
    ServerOptions o;
    o.allowed_uids = {static_cast<uint32_t>(::getuid()) + 1};
    ServerThread st(o);
    RawClient c(st.path());
    (void)c.send(1, PingRequest{});
    CHECK(!c.recv());
    CHECK(c.eof());
    CHECK(st.with([](auto&, auto& s) { return s.stats().rejected; }) == 1);
    ServerOptions ok;
    ok.allowed_gids = {static_cast<uint32_t>(::getgid())};
    ServerThread st2(ok);
    RawClient c2(st2.path());
    REQUIRE(c2.send(1, PingRequest{}));
    CHECK(reply(c2).ok());
}

TEST_CASE("listen_refuses_a_live_socket_and_replaces_a_stale_one") {
    ServerThread st;
    uv::Loop loop;
    testing::FakeBackend b;
    {
        Server s(loop, b, {});
        Status r = s.listen(st.path(), 0660, "");
        CHECK(r.code() == Code::kBusy);
        std::string other = st.dir() + "/stale.sock";
        {
            Server s2(loop, b, {});
            REQUIRE(s2.listen(other, 0660, ""));
        }
        // s2 unlinked its socket at close; make a stale one by hand and replace it.
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, other.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        ::close(fd);
        CHECK(s.listen(other, 0660, ""));
        CHECK(s.listen(st.dir(), 0660, "").code() == Code::kInvalidArgument);
        CHECK(!s.listen(other + "2", 0660, "no-such-group-xyz"));
    }
    CHECK(loop.close());
}

TEST_CASE("adopted_listening_descriptor_serves_clients") {
    ServerThread st;  // only for its temp dir
    std::string path = st.dir() + "/adopted.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    uv::Loop loop;
    testing::FakeBackend b;
    {
        Server s(loop, b, {});
        REQUIRE(s.adopt(fd));
        RawClient c(path);
        REQUIRE(c.send(1, PingRequest{}));
        std::atomic<bool> answered{false};
        bool ok = false;
        std::thread t([&] {
            auto m = c.recv();
            ok = m && m->ok();
            answered = true;
            // Wakes the loop (EOF), which then sees `answered`.
            ::shutdown(c.fd(), SHUT_WR);
        });
        // The loop runs until the client has read the reply, not for a fixed time.
        CHECK(loop.run_until([&] { return answered.load(); }));
        t.join();
        CHECK(ok);
        CHECK(s.stats().requests == 1);
        s.close();
        CHECK(loop.run_until([&] { return s.stats().connections == 0; }, 2000));
    }
    CHECK(loop.close());
}
