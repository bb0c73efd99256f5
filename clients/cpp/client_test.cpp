// The C++ client against the real server over a socket, with ipc's FakeBackend behind it.
#include "raftd/client.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "ipc/testing/server_thread.h"

using raftd::ipc::testing::ServerThread;
namespace rc = raftd::client;

namespace {
struct Quiet {
    Quiet() {
        spdlog::set_level(spdlog::level::warn);
        std::signal(SIGPIPE, SIG_IGN);
    }
} quiet;
}  // namespace

TEST_CASE("every_synchronous_op_round_trips") {
    ServerThread st;
    auto c = rc::Client::connect(st.path());
    REQUIRE(c);
    rc::Client& cl = **c;
    CHECK(cl.server().node_id == 1);
    CHECK(cl.server().max_entry == 1u << 20);
    CHECK(cl.ping());
    auto p = cl.propose("hello");
    REQUIRE(p);
    CHECK(p->index == 1);
    CHECK(p->term == 3);
    auto ri = cl.read_index();
    REQUIRE(ri);
    CHECK(*ri == 1);
    auto s = cl.status();
    REQUIRE(s);
    CHECK(s->role == "leader");
    CHECK(s->commit == 1);
    CHECK(s->members.members.size() == 3);
    auto m = cl.add_member(4, "h:4", true);
    REQUIRE(m);
    CHECK(m->members.size() == 4);
    CHECK(!m->members.back().voter);
    CHECK(cl.promote(4));
    CHECK(cl.demote(4));
    CHECK(cl.remove_member(4));
    auto again = cl.remove_member(4);
    REQUIRE(!again);
    CHECK(again.error().code == rc::ErrorCode::kNotFound);
    CHECK(cl.members()->members.size() == 3);
    CHECK(*cl.transfer_leader(2) == 2);
    CHECK(*cl.campaign() == 4);
    auto idx = cl.read_index();
    std::string snap(3 * 1000 + 17, 'q');
    auto sr = cl.snapshot(*idx, snap, 1000);
    REQUIRE(sr);
    CHECK(*sr == *idx);
    CHECK(st.with([](auto& b, auto&) { return b.snap_bytes_; }) == snap);
    auto bad = cl.snapshot(*idx + 100, "x");
    REQUIRE(!bad);
    CHECK(bad.error().code == rc::ErrorCode::kBadRequest);
}

TEST_CASE("async_proposals_pipeline_and_keep_connection_order") {
    ServerThread st;
    auto c = rc::Client::connect(st.path());
    REQUIRE(c);
    std::vector<uint64_t> idx(300, 0);
    for (int i = 0; i < 300; ++i)
        (*c)->propose_async("v" + std::to_string(i), [&idx, i](rc::Result<rc::Proposed> r) {
            REQUIRE(r);
            idx[i] = r->index;
        });
    CHECK((*c)->in_flight() > 0);
    REQUIRE((*c)->wait_all(5000));
    for (int i = 1; i < 300; ++i) CHECK(idx[i] == idx[i - 1] + 1);
}

TEST_CASE("typed_errors_carry_code_message_and_leader") {
    ServerThread st;
    st.run([](auto& b, auto& s) {
        b.propose_error = raftd::ipc::Error{raftd::ipc::ErrorCode::kIndeterminate, "lost", {}};
        s.on_leader_change({2, "h:2"});
    });
    auto c = rc::Client::connect(st.path());
    REQUIRE(c);
    auto p = (*c)->propose("x");
    REQUIRE(!p);
    CHECK(p.error().code == rc::ErrorCode::kIndeterminate);
    CHECK(p.error().code_name == "INDETERMINATE");
    CHECK(p.error().message == "lost");
    auto big = (*c)->propose(std::string((1u << 20) + 1, 'x'));
    CHECK(big.error().code == rc::ErrorCode::kTooLarge);
    CHECK((*c)->ping());
}

TEST_CASE("subscribe_delivers_snapshot_then_contiguous_entries_per_callback") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        for (int i = 0; i < 30; ++i) b.append("e" + std::to_string(i + 1));
        b.commit_to(30);
        b.install_snapshot(10, "snapshot-bytes");
    });
    auto c = rc::Client::connect(st.path());
    REQUIRE(c);
    std::string snap;
    std::vector<uint64_t> entries;
    uint64_t snap_index = 0;
    auto sub = (*c)->subscribe(1, [&](const rc::Event& e) {
        if (e.kind == rc::Event::Kind::kSnapshot) {
            snap += e.data;
            if (e.done) snap_index = e.index;
            CHECK(e.members.has_value());
        } else if (e.kind == rc::Event::Kind::kEntry) {
            entries.push_back(e.index);
            CHECK(e.data == "e" + std::to_string(e.index));
        }
    });
    REQUIRE(sub);
    while (entries.size() < 20) REQUIRE((*c)->poll(2000));
    CHECK(snap == "snapshot-bytes");
    CHECK(snap_index == 10);
    CHECK(entries.front() == 11);
    CHECK(entries.back() == 30);
    // New proposals from the same client appear in its own stream.
    auto p = (*c)->propose("e31");
    REQUIRE(p);
    while (entries.size() < 21) REQUIRE((*c)->poll(2000));
    CHECK(entries.back() == 31);
    CHECK((*c)->unsubscribe(*sub));
    CHECK(!(*c)->unsubscribe(*sub));
}

TEST_CASE("connection_loss_fails_requests_and_ends_subscriptions") {
    auto st = std::make_unique<ServerThread>();
    st->run([](auto& b, auto&) { b.auto_commit = false; });
    auto c = rc::Client::connect(st->path());
    REQUIRE(c);
    std::optional<rc::Error> ended;
    REQUIRE((*c)->subscribe(std::nullopt, [&](const rc::Event& e) {
        if (e.kind == rc::Event::Kind::kEnd) ended = e.error;
    }));
    std::optional<rc::Error> failed;
    (*c)->propose_async("x", [&](rc::Result<rc::Proposed> r) {
        if (!r) failed = r.error();
    });
    REQUIRE((*c)->poll(0));
    st.reset();  // the server shuts down
    auto r = (*c)->wait_all(5000);
    CHECK(!r);
    REQUIRE(failed);
    CHECK(failed->code == rc::ErrorCode::kConnection);
    REQUIRE(ended);
    // Either the server's SHUTTING_DOWN end event or the local connection loss.
    CHECK((ended->code == rc::ErrorCode::kShuttingDown || ended->code == rc::ErrorCode::kConnection));
    CHECK(!(*c)->ping());
    auto nc = rc::Client::connect("no-such-dir/raftd.sock");
    REQUIRE(!nc);
    CHECK(nc.error().code == rc::ErrorCode::kConnection);
}
