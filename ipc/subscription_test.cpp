// Subscriptions without sockets: the stream encodes into an OutBuffer that the test drains
// like a client reading slowly, against FakeBackend. Order (snapshot, then the entries after
// it), starting points, the output bound, and what a slow subscriber sees when the log moves
// on underneath it.
#include "ipc/subscription.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ipc/testing/fake_backend.h"
#include "ipc/testing/raw_client.h"

using namespace raftd;
using namespace raftd::ipc;
using raftd::ipc::testing::FakeBackend;
using raftd::ipc::testing::Msg;

namespace {

// Decodes and removes every frame in `out`: what a client reads when it catches up.
std::vector<Msg> drain(OutBuffer& out) {
    std::string bytes = out.flatten();
    out.clear();
    std::vector<Msg> msgs;
    size_t at = 0;
    while (at < bytes.size()) {
        REQUIRE(bytes.size() - at >= 4);
        uint32_t n = read_be32(bytes.data() + at);
        REQUIRE(bytes.size() - at - 4 >= n);
        Msg m;
        m.h = msgpack::unpack(bytes.data() + at + 4, n);
        msgs.push_back(std::move(m));
        at += 4 + n;
    }
    return msgs;
}

// A backend with entries 1..n committed, each `size` bytes ("e<index>" padded with '.').
void fill(FakeBackend& b, int n, size_t size = 8) {
    for (int i = 1; i <= n; ++i) {
        std::string d = "e" + std::to_string(i);
        d.resize(std::max(size, d.size()), '.');
        b.append(d);
    }
    b.commit_to(static_cast<raft::Index>(n));
}

// Pumps and drains until the stream has nothing more to say; every message in order.
std::vector<Msg> run_to_end(Subscriptions& s, OutBuffer& out) {
    std::vector<Msg> all;
    for (int guard = 0; guard < 100000 && s.pump(out, 0); ++guard)
        for (Msg& m : drain(out))
            all.push_back(std::move(m));
    return all;
}

}  // namespace

TEST_CASE("stream_sends_the_snapshot_in_chunks_then_the_entries_after_it") {
    FakeBackend b;
    fill(b, 20);
    std::string state(1000, 's');
    for (size_t i = 0; i < state.size(); ++i)
        state[i] = static_cast<char>('a' + i % 26);
    b.install_snapshot(15, state);  // entries 1..15 are gone
    Subscriptions subs(b, {1u << 20, 300});
    subs.start(7, raft::Index{1});
    OutBuffer out;
    REQUIRE(subs.pump(out, 0));
    std::vector<Msg> msgs = drain(out);
    std::string got;
    size_t i = 0;
    for (; i < msgs.size() && msgs[i].str("ev") == "snapshot"; ++i) {
        CHECK(msgs[i].u64("id") == 7);
        CHECK(msgs[i].u64("index") == 15);
        CHECK(msgs[i].u64("offset") == got.size());
        got += msgs[i].str("data");
        CHECK(msgs[i].get("done")->via.boolean == (got.size() == state.size()));
    }
    CHECK(i == 4);  // 1000 bytes in chunks of at most 300
    CHECK(got == state);
    REQUIRE(msgs.size() == i + 5);
    for (raft::Index idx = 16; idx <= 20; ++idx, ++i) {
        CHECK(msgs[i].str("ev") == "entry");
        CHECK(msgs[i].u64("index") == idx);
        CHECK(msgs[i].str("data").rfind("e" + std::to_string(idx), 0) == 0);
    }
    // Caught up: nothing until the commit index moves, then exactly the new entry.
    CHECK(!subs.pump(out, 0));
    CHECK(out.empty());
    b.append("late");
    CHECK(!subs.pump(out, 0));  // appended but not committed
    b.commit_to(21);
    REQUIRE(subs.pump(out, 0));
    msgs = drain(out);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].u64("index") == 21);
    CHECK(msgs[0].str("data") == "late");
}

TEST_CASE("stream_starts_where_asked_and_a_start_beyond_the_log_waits_for_its_index") {
    FakeBackend b;
    fill(b, 10);
    b.append("uncommitted");  // last index 11, commit index 10
    Subscriptions subs(b, {});
    OutBuffer out;

    subs.start(1, raft::Index{7});
    std::vector<Msg> msgs = run_to_end(subs, out);
    REQUIRE(msgs.size() == 4);
    for (size_t i = 0; i < 4; ++i)
        CHECK(msgs[i].u64("index") == 7 + i);
    CHECK(subs.stop(1));
    CHECK(!subs.stop(1));

    // Without `from`: after the commit index, even though entry 11 exists.
    subs.start(2, std::nullopt);
    CHECK(!subs.pump(out, 0));
    b.commit_to(11);
    msgs = run_to_end(subs, out);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].u64("index") == 11);

    // Beyond the last index + 1 (like etcd's watch on a future revision): the stream waits,
    // sends nothing for the entries below its start, and begins exactly at `from`.
    CHECK(subs.stop(2));
    subs.start(4, raft::Index{14});
    CHECK(subs.contains(4));
    CHECK(!subs.pump(out, 0));
    b.append("12");
    b.append("13");
    b.commit_to(13);
    CHECK(!subs.pump(out, 0));
    b.append("14");
    b.append("15");
    b.commit_to(15);
    msgs = run_to_end(subs, out);
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].u64("index") == 14);
    CHECK(msgs[0].str("data") == "14");
    CHECK(msgs[1].u64("index") == 15);
}

TEST_CASE("stream_reads_ahead_only_below_the_output_bound") {
    FakeBackend b;
    fill(b, 200, 1024);
    const uint64_t limit = 16 * 1024;
    const uint64_t event = 1024 + 64;  // one entry event, generously
    Subscriptions subs(b, {limit, 256u << 10});
    subs.start(1, raft::Index{1});
    OutBuffer out;
    // Nobody reads: one pump stops near the bound, and pumping again adds nothing.
    REQUIRE(subs.pump(out, 0));
    const size_t first = out.size();
    CHECK(first >= limit);
    CHECK(first < limit + event);
    CHECK(!subs.pump(out, 0));
    CHECK(out.size() == first);
    // Output in flight (handed to the socket, not yet written) counts too.
    OutBuffer other;
    CHECK(!subs.pump(other, limit));
    CHECK(other.empty());
    CHECK(subs.pump(other, limit - 1));  // one byte of room still reads one entry
    CHECK(other.frames() == 1);
    // Reading on as the client drains: every entry once, in order, never above the bound.
    std::vector<Msg> msgs = drain(out);
    for (Msg& m : drain(other))
        msgs.push_back(std::move(m));
    while (subs.pump(out, 0)) {
        CHECK(out.size() < limit + event);
        for (Msg& m : drain(out))
            msgs.push_back(std::move(m));
    }
    REQUIRE(msgs.size() == 200);
    for (size_t i = 0; i < msgs.size(); ++i)
        REQUIRE(msgs[i].u64("index") == i + 1);
}

TEST_CASE("streams_on_one_connection_share_the_bound_round_robin") {
    FakeBackend b;
    fill(b, 100, 1024);
    Subscriptions subs(b, {8 * 1024, 256u << 10});
    subs.start(1, raft::Index{1});
    subs.start(2, raft::Index{1});
    OutBuffer out;
    REQUIRE(subs.pump(out, 0));
    std::vector<Msg> msgs = drain(out);
    bool saw1 = false, saw2 = false;
    for (Msg& m : msgs) {
        saw1 |= m.u64("id") == 1;
        saw2 |= m.u64("id") == 2;
    }
    CHECK(saw1);
    CHECK(saw2);  // the second stream is not starved by the first
    for (Msg& m : run_to_end(subs, out))
        msgs.push_back(std::move(m));
    raft::Index next[3] = {0, 1, 1};
    for (Msg& m : msgs) {
        uint64_t id = m.u64("id");
        REQUIRE((id == 1 || id == 2));
        REQUIRE(m.u64("index") == next[id]++);
    }
    CHECK(next[1] == 101);
    CHECK(next[2] == 101);
}

TEST_CASE("slow_subscriber_overtaken_by_compaction_gets_the_snapshot_then_continues") {
    FakeBackend b;
    fill(b, 40, 512);
    Subscriptions subs(b, {2048, 256u << 10});
    subs.start(1, raft::Index{1});
    OutBuffer out;
    REQUIRE(subs.pump(out, 0));
    std::vector<Msg> msgs = drain(out);
    REQUIRE(!msgs.empty());
    const uint64_t read = msgs.back().u64("index");
    REQUIRE(read < 10);
    // While the client is away, the node snapshots at 30 and compacts the log through it.
    b.install_snapshot(30, "state@30");
    std::vector<Msg> rest = run_to_end(subs, out);
    REQUIRE(rest.size() == 1 + 10);
    CHECK(rest[0].str("ev") == "snapshot");
    CHECK(rest[0].u64("index") == 30);
    CHECK(rest[0].str("data") == "state@30");
    for (size_t i = 1; i < rest.size(); ++i)
        CHECK(rest[i].u64("index") == 30 + i);
}

TEST_CASE("slow_subscriber_mid_snapshot_starts_over_with_a_newer_snapshot") {
    FakeBackend b;
    fill(b, 20);
    b.install_snapshot(15, "abcdefghij");
    // A tiny bound: one event per pump, as for a client that reads one frame at a time.
    Subscriptions subs(b, {64, 4});
    subs.start(1, raft::Index{1});
    OutBuffer out;
    REQUIRE(subs.pump(out, 0));
    std::vector<Msg> msgs = drain(out);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].u64("index") == 15);
    CHECK(msgs[0].str("data") == "abcd");
    b.install_snapshot(18, "0123456789AB");
    msgs = run_to_end(subs, out);
    REQUIRE(msgs.size() == 3 + 2);
    std::string got;
    for (size_t i = 0; i < 3; ++i) {
        CHECK(msgs[i].str("ev") == "snapshot");
        CHECK(msgs[i].u64("index") == 18);
        CHECK(msgs[i].u64("offset") == got.size());  // offset 0 first: drop the partial one
        got += msgs[i].str("data");
    }
    CHECK(got == "0123456789AB");
    CHECK(msgs[3].u64("index") == 19);
    CHECK(msgs[4].u64("index") == 20);
}

TEST_CASE("stream_that_cannot_continue_ends_with_internal_and_others_end_at_shutdown") {
    FakeBackend b;
    fill(b, 10);
    Subscriptions subs(b, {});
    subs.start(1, raft::Index{5});
    subs.start(2, raft::Index{11});
    // Entries 1..8 dropped with no snapshot covering them: nothing connects 5 to the log.
    b.compact(8);
    OutBuffer out;
    REQUIRE(subs.pump(out, 0));
    std::vector<Msg> msgs = drain(out);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].str("ev") == "end");
    CHECK(msgs[0].u64("id") == 1);
    CHECK(msgs[0].code() == "INTERNAL");
    CHECK(!subs.contains(1));
    subs.end_all(out, Error{ErrorCode::kShuttingDown, "stopping", std::nullopt});
    msgs = drain(out);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].u64("id") == 2);
    CHECK(msgs[0].code() == "SHUTTING_DOWN");
    CHECK(subs.empty());
}
