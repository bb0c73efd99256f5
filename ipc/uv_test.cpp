#include "ipc/uv.h"

#include <doctest/doctest.h>

#include <unistd.h>
#include <csignal>
#include <string>
#include <thread>

namespace uv = raftd::ipc::uv;

namespace {

std::string temp_socket_path(const char* tag) {
    return "raftd-uvtest-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

}  // namespace

TEST_CASE("timer_fires_and_loop_closes_cleanly") {
    uv::Loop loop;
    REQUIRE(loop.init_status());
    int fired = 0;
    {
        uv::Timer t;
        REQUIRE(t.init(loop));
        REQUIRE(t.start(1, 0, [&] { ++fired; }));
        CHECK(loop.run_until([&] { return fired == 1; }));
    }
    CHECK(loop.close());
}

TEST_CASE("closed_timer_never_calls_back") {
    uv::Loop loop;
    int fired = 0;
    uv::Timer t;
    REQUIRE(t.init(loop));
    REQUIRE(t.start(0, 0, [&] { ++fired; }));
    t.close();
    t.close();  // safe twice
    CHECK(!t.is_open());
    loop.run();
    CHECK(fired == 0);
    CHECK(loop.close());
}

TEST_CASE("handle_may_be_destroyed_inside_its_own_callback") {
    uv::Loop loop;
    int fired = 0;
    auto t = std::make_unique<uv::Timer>();
    REQUIRE(t->init(loop));
    REQUIRE(t->start(0, 1, [&] {
        ++fired;
        t.reset();  // the lambda itself lives on until the close callback
    }));
    loop.run();
    CHECK(fired == 1);
    CHECK(loop.close());
}

TEST_CASE("loop_close_reports_handles_still_open") {
    uv::Loop loop;
    uv::Timer t;
    REQUIRE(t.init(loop));
    auto st = loop.close();
    CHECK(!st);
    CHECK(st.message().find("1 handle") != std::string::npos);
    t.close();
    CHECK(loop.close());
}

TEST_CASE("async_wakes_the_loop_from_another_thread") {
    uv::Loop loop;
    int woke = 0;
    uv::Async a;
    REQUIRE(a.init(loop, [&] { ++woke; }));
    std::thread th([&] { (void)a.send(); });
    CHECK(loop.run_until([&] { return woke >= 1; }));
    th.join();
    a.close();
    CHECK(loop.close());
}

TEST_CASE("signal_handler_runs_on_the_loop") {
    uv::Loop loop;
    int got = 0;
    uv::Signal s;
    REQUIRE(s.init(loop));
    REQUIRE(s.start(SIGUSR1, [&](int sig) { got = sig; }));
    ::raise(SIGUSR1);
    CHECK(loop.run_until([&] { return got == SIGUSR1; }));
    s.close();
    CHECK(loop.close());
}

TEST_CASE("pipe_round_trip_and_cancelled_write_releases_its_buffer") {
    uv::Loop loop;
    const std::string path = temp_socket_path("rt");
    ::unlink(path.c_str());
    uv::Pipe server, accepted, client;
    REQUIRE(server.init(loop));
    REQUIRE(server.bind(path));
    std::string received;
    char buf[256];
    REQUIRE(server.listen(8, [&](int status) {
        REQUIRE(status == 0);
        REQUIRE(accepted.init(loop));
        REQUIRE(server.accept(accepted));
        REQUIRE(accepted.read_start([&](size_t) { return std::span<char>(buf, sizeof buf); },
                                    [&](ssize_t n, std::string_view d) {
                                        if (n > 0) received.append(d);
                                    }));
    }));
    bool connected = false;
    REQUIRE(client.init(loop));
    REQUIRE(client.connect(path, [&](int st) { connected = (st == 0); }));
    REQUIRE(loop.run_until([&] { return connected; }));

    auto keep = std::make_shared<std::string>("hello, world");
    std::weak_ptr<std::string> watch = keep;
    uv_buf_t b = uv_buf_init(keep->data(), static_cast<unsigned>(keep->size()));
    int done = -1;
    REQUIRE(client.write({&b, 1}, std::move(keep), [&](int st) { done = st; }));
    CHECK(loop.run_until([&] { return received == "hello, world"; }));
    CHECK(done == 0);
    CHECK(watch.expired());

    // A write cancelled by close(): no callback, but the bytes are released.
    auto keep2 = std::make_shared<std::string>(1 << 20, 'x');
    std::weak_ptr<std::string> watch2 = keep2;
    uv_buf_t b2 = uv_buf_init(keep2->data(), static_cast<unsigned>(keep2->size()));
    int done2 = 12345;
    accepted.read_stop().is_ok();
    REQUIRE(client.write({&b2, 1}, std::move(keep2), [&](int st) { done2 = st; }));
    client.close();
    accepted.close();
    server.close();
    CHECK(loop.close());
    CHECK(done2 == 12345);
    CHECK(watch2.expired());
    ::unlink(path.c_str());
}

TEST_CASE("uv_errors_become_statuses_with_names") {
    auto st = uv::to_status(UV_EADDRINUSE, "bind x.sock");
    CHECK(st.code() == raftd::Code::kIoError);
    CHECK(st.message() == "bind x.sock: address already in use (EADDRINUSE)");
    CHECK(uv::to_status(UV_ENOENT, "x").code() == raftd::Code::kNotFound);
    CHECK(uv::to_status(UV_ETIMEDOUT, "x").code() == raftd::Code::kTimeout);
    CHECK(uv::to_status(UV_EOF, "x").code() == raftd::Code::kUnavailable);
}

TEST_CASE("operations_on_a_closed_handle_fail_cleanly") {
    uv::Pipe p;
    CHECK(!p.bind("x"));
    CHECK(!p.read_stop());
    uv::Timer t;
    CHECK(t.start(1, 0, [] {}).code() == raftd::Code::kInvalidArgument);
}
