// The apply loop: its stream state machine on hand-made events, and the loop against the
// real server over ipc's FakeBackend (restarted under it through a symlinked socket path).
#include "raftd/apply_loop.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "ipc/testing/server_thread.h"

using raftd::ipc::testing::ServerThread;
namespace rc = raftd::client;
namespace fs = std::filesystem;

namespace {

using Clock = rc::ApplyLoop::Clock;
Clock::time_point in_ms(int ms) {
    return Clock::now() + std::chrono::milliseconds(ms);
}

// A state that remembers every apply and restore, so a test can see order and repeats.
struct Recorder {
    std::vector<uint64_t> applied;      // indexes given to apply(), in call order
    std::map<uint64_t, int> times;      // index -> apply() calls
    std::vector<std::string> restored;  // "INDEX:BYTES" per restore()
    std::string state;                  // the data of every entry applied, '|'-joined
    rc::ApplyCallbacks callbacks() {
        rc::ApplyCallbacks cb;
        cb.apply = [this](const rc::Entry& e) {
            applied.push_back(e.index);
            ++times[e.index];
            if (e.type == "data") state += e.data + "|";
        };
        cb.snapshot = [this] { return state; };
        cb.restore = [this](std::string_view b, uint64_t i) -> rc::Result<rc::Unit> {
            restored.push_back(std::to_string(i) + ":" + std::string(b));
            state = std::string(b);
            return rc::Unit{};
        };
        return cb;
    }
};

rc::Event entry(uint64_t i, std::string data = "d") {
    rc::Event e;
    e.kind = rc::Event::Kind::kEntry;
    e.index = i;
    e.term = 1;
    e.type = "data";
    e.data = std::move(data);
    return e;
}
rc::Event chunk(uint64_t i, uint64_t off, std::string data, bool done) {
    rc::Event e;
    e.kind = rc::Event::Kind::kSnapshot;
    e.index = i;
    e.term = 1;
    e.offset = off;
    e.data = std::move(data);
    e.done = done;
    return e;
}

void fill(raftd::ipc::testing::FakeBackend& b, int n) {
    while (b.last_index() < static_cast<uint64_t>(n))
        b.append("e" + std::to_string(b.last_index() + 1));
    b.commit_to(n);
}

// A socket path the test can point at another server: connect() follows the symlink.
struct Link {
    std::string dir, path;
    Link() {
        std::string tmpl = (fs::temp_directory_path() / "raftd-apply-XXXXXX").string();
        dir = ::mkdtemp(tmpl.data()) ? tmpl : "";
        path = dir + "/raftd.sock";
    }
    ~Link() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void point_at(const std::string& target) {
        fs::create_symlink(target, path + ".new");
        fs::rename(path + ".new", path);
    }
};

// A server with `entries` committed behind a Link, and options that retry fast.
struct Restartable {
    Link link;
    std::unique_ptr<ServerThread> server = std::make_unique<ServerThread>();
    rc::ApplyOptions opts;
    explicit Restartable(int entries) {
        server->run([entries](auto& b, auto&) { fill(b, entries); });
        link.point_at(server->path());
        opts.reconnect_min_ms = 5;
        opts.reconnect_max_ms = 40;
    }
};

}  // namespace

TEST_CASE("stream_applier_restarts_a_snapshot_at_offset_0_and_refuses_gaps") {
    Recorder rec;
    auto cb = rec.callbacks();
    rc::StreamApplier a(&cb, 0);
    // A snapshot replaced before its last chunk: the partial bytes are discarded.
    REQUIRE(a.feed(chunk(10, 0, "ab", false)));
    REQUIRE(a.feed(chunk(10, 2, "cd", false)));
    REQUIRE(a.feed(chunk(12, 0, "xy", false)));
    REQUIRE(a.feed(chunk(12, 2, "z", true)));
    CHECK(rec.restored == std::vector<std::string>{"12:xyz"});
    CHECK(a.applied() == 12);
    REQUIRE(a.feed(entry(13)));
    // A gap and a repeat are errors, and neither reaches apply().
    auto gap = a.feed(entry(15));
    REQUIRE(!gap);
    CHECK(gap.error().message.find("gap") != std::string::npos);
    CHECK(!a.feed(entry(13)));
    CHECK(rec.applied == std::vector<uint64_t>{13});
    CHECK(a.applied() == 13);
    // A chunk that does not continue the snapshot being assembled.
    REQUIRE(a.feed(chunk(20, 0, "abc", false)));
    CHECK(!a.feed(chunk(20, 2, "x", true)));
    CHECK(!a.feed(chunk(21, 3, "x", true)));
    // An entry while a snapshot is unfinished; a new subscription drops the partial one.
    CHECK(!a.feed(entry(14)));
    a.reset_partial();
    CHECK(!a.feed(chunk(20, 3, "x", true)));
    REQUIRE(a.feed(entry(14)));
    CHECK(rec.restored.size() == 1);
}

TEST_CASE("stream_applier_counts_entries_and_bytes_for_the_snapshot_policy") {
    Recorder rec;
    auto cb = rec.callbacks();
    rc::StreamApplier a(&cb, 0);
    REQUIRE(a.feed(entry(1, std::string(60, 'x'))));
    CHECK(!a.snapshot_due({3, 0}));
    CHECK(!a.snapshot_due({0, 100}));
    REQUIRE(a.feed(entry(2, std::string(60, 'x'))));
    CHECK(a.snapshot_due({0, 100}));
    REQUIRE(a.feed(entry(3)));
    CHECK(a.snapshot_due({3, 0}));
    a.snapshot_taken();
    CHECK(!a.snapshot_due({3, 100}));
    CHECK(!a.snapshot_due({}));
}

TEST_CASE("apply_loop_restores_the_snapshot_applies_each_entry_once_and_uploads_by_policy") {
    ServerThread st;
    st.run([](auto& b, auto&) {
        fill(b, 30);
        b.install_snapshot(10, "snap-through-10");
    });
    Recorder rec;
    rc::ApplyOptions o;
    o.snapshot.every_entries = 7;
    auto loop = rc::ApplyLoop::open(st.path(), rec.callbacks(), o);
    REQUIRE(loop);
    rc::ApplyLoop& l = **loop;
    REQUIRE(l.wait_applied(30, in_ms(5000)));
    CHECK(rec.restored == std::vector<std::string>{"10:snap-through-10"});
    REQUIRE(rec.applied.size() == 20);
    for (size_t i = 0; i < rec.applied.size(); ++i)
        CHECK(rec.applied[i] == 11 + i);
    // Proposals through the loop, read-your-writes, and a linearizable read point.
    for (int i = 31; i <= 40; ++i) {
        auto p = l.propose("e" + std::to_string(i), in_ms(5000));
        REQUIRE(p);
        CHECK(p->index == static_cast<uint64_t>(i));
        REQUIRE(l.wait_applied(p->index, in_ms(5000)));
    }
    auto ri = l.read_barrier(in_ms(5000));
    REQUIRE(ri);
    CHECK(*ri == 40);
    CHECK(l.applied() == 40);
    for (auto& [i, n] : rec.times)
        CHECK(n == 1);
    // 30 entries applied after the restore: uploads at 17, 24, 31 and 38.
    CHECK(l.stats().snapshots == 4);
    CHECK(l.stats().snapshot_failures == 0);
    CHECK(l.stats().restores == 1);
    auto [snap_index, snap_bytes] =
        st.with([](auto& b, auto&) { return std::pair(b.snap_.index, b.snap_bytes_); });
    CHECK(snap_index == 38);
    CHECK(snap_bytes.rfind("snap-through-10", 0) == 0);
    CHECK(snap_bytes.find("e38|") != std::string::npos);
    CHECK(snap_bytes.find("e39|") == std::string::npos);
}

TEST_CASE("apply_loop_treats_an_upload_the_latest_snapshot_covers_as_success") {
    ServerThread st;
    // The node has a snapshot at 25 but still its whole log, as after a restart that
    // replays from 1: every upload below 25 is answered ok with 25.
    st.run([](auto& b, auto&) {
        fill(b, 30);
        b.snap_.index = 25;
        b.snap_.term = b.term;
        b.snap_.membership = b.config;
        b.snap_bytes_ = "node-snapshot";
    });
    Recorder rec;
    rc::ApplyOptions o;
    o.snapshot.every_entries = 5;
    auto loop = rc::ApplyLoop::open(st.path(), rec.callbacks(), o);
    REQUIRE(loop);
    REQUIRE((*loop)->wait_applied(30, in_ms(5000)));
    CHECK(rec.restored.empty());
    CHECK((*loop)->stats().snapshots == 6);
    CHECK((*loop)->stats().snapshot_failures == 0);
    CHECK(st.with([](auto& b, auto&) { return b.snap_.index; }) == 30);
}

TEST_CASE("apply_loop_resubscribes_after_the_server_restarts_and_waits_out_a_behind_node") {
    Restartable r(20);
    Recorder rec;
    auto loop = rc::ApplyLoop::open(r.link.path, rec.callbacks(), r.opts);
    REQUIRE(loop);
    rc::ApplyLoop& l = **loop;
    REQUIRE(l.wait_applied(20, in_ms(5000)));
    r.server.reset();  // the daemon stops
    auto gone = l.wait_applied(21, in_ms(150));
    REQUIRE(!gone);
    CHECK(gone.error().code == rc::ErrorCode::kTimeout);  // not given up: still retrying
    // It comes back without the last entries (an unsynced tail lost): subscribing from 21
    // is refused until they are there again.
    ServerThread b;
    b.run([](auto& bk, auto&) { fill(bk, 15); });
    r.link.point_at(b.path());
    CHECK(l.wait_applied(21, in_ms(200)).error().code == rc::ErrorCode::kTimeout);
    b.run([](auto& bk, auto&) { fill(bk, 25); });
    REQUIRE(l.wait_applied(25, in_ms(5000)));
    CHECK(l.stats().reconnects == 1);
    REQUIRE(rec.applied.size() == 25);
    for (size_t i = 0; i < rec.applied.size(); ++i)
        CHECK(rec.applied[i] == i + 1);
    auto p = l.propose("after", in_ms(5000));
    REQUIRE(p);
    REQUIRE(l.wait_applied(p->index, in_ms(5000)));
    CHECK(rec.state.find("after|") != std::string::npos);
}

TEST_CASE("apply_loop_gives_up_reconnecting_after_the_bound_and_open_does_not_retry") {
    Restartable r(3);
    r.opts.reconnect_give_up_ms = 300;
    Recorder rec;
    auto loop = rc::ApplyLoop::open(r.link.path, rec.callbacks(), r.opts);
    REQUIRE(loop);
    REQUIRE((*loop)->wait_applied(3, in_ms(5000)));
    r.server.reset();
    const auto t0 = Clock::now();
    auto gave_up = (*loop)->wait_applied(4, in_ms(10000));
    REQUIRE(!gave_up);
    CHECK(gave_up.error().code == rc::ErrorCode::kConnection);
    CHECK(Clock::now() - t0 < std::chrono::seconds(3));
    // open() makes one attempt: a state beyond the node's log is refused at once.
    ServerThread b;
    b.run([](auto& bk, auto&) { fill(bk, 5); });
    Recorder rec2;
    rc::ApplyOptions o2;
    o2.applied = 7;
    auto bad = rc::ApplyLoop::open(b.path(), rec2.callbacks(), o2);
    REQUIRE(!bad);
    CHECK(bad.error().code == rc::ErrorCode::kBadRequest);
}

TEST_CASE("apply_loop_uploads_a_snapshot_larger_than_max_entry_in_chunks") {
    ServerThread st;
    st.run([](auto& b, auto&) { fill(b, 2); });
    std::string big((5u << 20) / 2, 'b');  // 2.5 MiB: three chunks of at most max_entry
    big[0] = 'x';
    big.back() = 'y';
    rc::ApplyCallbacks cb;
    cb.apply = [](const rc::Entry&) {};
    cb.snapshot = [&] { return big; };
    rc::ApplyOptions o;
    o.snapshot.every_entries = 2;
    auto loop = rc::ApplyLoop::open(st.path(), cb, o);
    REQUIRE(loop);
    REQUIRE((*loop)->wait_applied(2, in_ms(5000)));
    CHECK((*loop)->stats().snapshots == 1);
    auto [index, bytes] =
        st.with([](auto& b, auto&) { return std::pair(b.snap_.index, b.snap_bytes_); });
    CHECK(index == 2);
    CHECK(bytes == big);
}
