// fake_raftd: the real ipc::Server over FakeBackend, as a process. Script tests of raftctl
// and the Python client use it to check every op without a cluster; the end-to-end tests
// against real raftd nodes are separate.
//
// Usage: fake_raftd SOCKET_PATH   (serves until SIGTERM or SIGINT)
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "ipc/server.h"
#include "ipc/testing/fake_backend.h"
#include "ipc/uv.h"

int main(int argc, char** argv) {
    using namespace raftd::ipc;
    if (argc != 2) {
        std::fprintf(stderr, "usage: fake_raftd SOCKET_PATH\n");
        return 2;
    }
    spdlog::set_level(spdlog::level::warn);
    uv::Loop loop;
    testing::FakeBackend backend;
    {
        Server server(loop, backend, {});
        backend.server = &server;
        if (auto s = server.listen(argv[1], 0600, ""); !s) {
            std::fprintf(stderr, "fake_raftd: %s\n", s.to_string().c_str());
            return 1;
        }
        uv::Signal term, intr;
        auto stop = [&](int) {
            server.close();
            term.close();
            intr.close();
        };
        (void)term.init(loop);
        (void)term.start(SIGTERM, stop);
        (void)intr.init(loop);
        (void)intr.start(SIGINT, stop);
        std::printf("ready\n");
        std::fflush(stdout);
        loop.run();
    }
    return loop.close() ? 0 : 1;
}
