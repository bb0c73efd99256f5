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
#include "daemon/http.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "wal/env.h"

namespace raftd::daemon {

namespace {

int startup_error(const Status& st) {
    std::fprintf(stderr, "raftd: error: %s\n", st.message().c_str());
    return 1;
}

// How often the loop publishes its gauges for the HTTP thread (http.h): /health lags a role
// change by at most this.
constexpr std::chrono::milliseconds kPublishEvery{100};

// On the loop thread: what only the loop may read, copied for the HTTP thread.
LoopSample collect_sample(NodeHost& host, const ClientService& client) {
    LoopSample s;
    s.valid = true;
    s.at = std::chrono::steady_clock::now();
    const ipc::StatusReply st = client.status();
    s.node_id = st.node_id;
    s.cluster = st.cluster;
    s.version = st.version;
    s.role = st.role;
    s.term = st.term;
    s.leader = st.leader;
    s.commit = st.commit;
    s.applied = host.node().status().applied;
    s.first_index = st.first_index;
    s.last_index = st.last_index;
    s.snapshot_index = st.snapshot_index;
    const ipc::ServerStats ss = client.server_stats();
    s.client_connections = ss.connections;
    s.subscriptions = ss.subscriptions;
    s.stalled_subscribers = ss.stalled_subscribers;
    s.stopping = host.stopping();
    s.awaiting_peers = host.awaiting_peers();
    for (const PeerView& v : host.transport().peer_views()) {
        PeerSample p;
        p.id = v.id;
        p.connected = v.connected;
        p.queue_bytes = v.queue_bytes;
        p.sent_messages = v.counters.sent_messages;
        p.sent_bytes = v.counters.sent_bytes;
        p.dropped_messages = v.counters.dropped_messages;
        p.received_messages = v.counters.received_messages;
        p.received_bytes = v.counters.received_bytes;
        p.reconnects = v.counters.connects > 1 ? v.counters.connects - 1 : 0;
        for (const auto& m : st.membership.members)
            if (m.node == v.id && m.progress) {
                p.has_match = true;
                p.match_index = m.progress->match;
            }
        s.peers.push_back(p);
    }
    s.status_json = status_json(st);
    return s;
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
    wal::set_sync_observer([](std::chrono::nanoseconds d) { metrics().fsync_seconds.observe(d); });
    // The HTTP port first, with the peer port (NodeHost::open): when it is taken, nothing on
    // disk has been touched yet. Until the loop publishes, /health answers "starting".
    std::unique_ptr<HttpServer> http;
    if (!cfg.metrics_listen.empty()) {
        auto srv = HttpServer::start(cfg.metrics_listen, metrics());
        if (!srv) return startup_error(srv.status());
        http = std::move(srv).value();
    }
    auto host = NodeHost::open(cfg);
    if (!host) return startup_error(host.status());
    if (Status st = (*host)->start(); !st) return startup_error(st);
    auto client = start_client_service(**host, activated_fd);
    if (!client) return startup_error(client.status());
    // What the HTTP thread serves is published by the loop from the host and the client
    // service, both running by now.
    std::unique_ptr<MetricsPublisher> publisher;
    if (http) {
        publisher = std::make_unique<MetricsPublisher>(
            metrics(), [h = host->get(), c = client->get()] { return collect_sample(*h, *c); });
        if (Status st = publisher->start((*host)->loop(), kPublishEvery); !st)
            spdlog::error("metrics: cannot publish: {}", st.message());
        spdlog::info("metrics: http://{}/metrics, /health, /status", cfg.metrics_listen);
    }
    (*host)->ready_to_serve();
    int rc = (*host)->run();
    http.reset();       // joins the HTTP thread (it reads only Metrics, which outlives it)
    publisher.reset();  // its timer closes before the loop goes away with the host
    client->reset();    // its handles close before the loop goes away with the host
    return rc;
}

}  // namespace raftd::daemon
