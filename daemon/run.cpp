// run_daemon: start-up order and the one-line startup errors (see host.h).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/client_service.h"
#include "daemon/host.h"
#include "daemon/logging.h"

namespace raftd::daemon {

namespace {

int startup_error(const Status& st) {
    std::fprintf(stderr, "raftd: error: %s\n", st.message().c_str());
    return 1;
}

}  // namespace

// Socket activation (sd_listen_fds(3)): systemd passes the client socket as fd 3 when
// LISTEN_PID names this process. The variables are removed so children do not inherit them.
int activated_socket_fd() {
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    int fd = -1;
    if (pid && fds && std::strtoll(pid, nullptr, 10) == static_cast<long long>(::getpid()) &&
        std::atoi(fds) >= 1)
        fd = 3;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return fd;
}

int run_daemon(const Config& cfg) {
    // A peer or client that closes its socket must cost an EPIPE, not the process.
    std::signal(SIGPIPE, SIG_IGN);
    if (Status st = init_logging(cfg); !st) return startup_error(st);
    for (const auto& w : cfg.warnings)
        spdlog::warn("config: {}", w);
    const int activated_fd = activated_socket_fd();
    auto host = NodeHost::open(cfg);
    if (!host) return startup_error(host.status());
    if (Status st = (*host)->start(); !st) return startup_error(st);
    auto client = start_client_service(**host, activated_fd);
    if (!client) return startup_error(client.status());
    (*host)->ready_to_serve();
    int rc = (*host)->run();
    client->reset();  // its handles close before the loop goes away with the host
    return rc;
}

}  // namespace raftd::daemon
