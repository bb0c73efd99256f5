// The optional HTTP listener (`metrics_listen`): GET /metrics (Prometheus text format
// 0.0.4), /health (200 or 503 and a one-line reason) and /status (the `status` reply as
// JSON). docs/metrics.md describes the endpoints and every metric.
//
// Ownership story: two objects, one per thread.
// - MetricsPublisher lives on the loop thread. A libuv timer copies what only the loop may
//   read (raft state, the transport's peers, the client server, the `status` reply) into a
//   LoopSample and publishes it into Metrics (metrics.h) — one mutex-protected swap per
//   period, plus one at each role change so /health follows elections promptly.
// - HttpServer is libmicrohttpd (MHD) running its own internal polling thread. A request
//   reads the atomics of Metrics and copies the latest LoopSample under that mutex; it never
//   touches the libuv loop, raft or the transport, so a slow scraper cannot stall the loop,
//   and a stuck loop still gets an honest /health (the sample's age says so).
//
// Owns: the listening socket (bound here, so a taken port is a one-line startup error with
// the address), the MHD daemon and its thread (joined in the destructor), the publisher's
// timer.
// Never: parse HTTP itself (MHD does), block the loop thread, or read loop-owned state
// from the HTTP thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "daemon/metrics.h"
#include "ipc/uv.h"
#include "raft/status.h"

struct MHD_Daemon;

namespace raftd::daemon {

class HttpServer {
  public:
    // Binds `addr` ("host:port") and starts serving on MHD's own thread.
    static Result<std::unique_ptr<HttpServer>> start(const std::string& addr, Metrics& m,
                                                     HealthLimits limits = {});
    ~HttpServer();  // stops MHD and joins its thread
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // The port bound.
    uint16_t port() const { return port_; }

    struct Response {
        int status = 200;
        std::string content_type;
        std::string body;
    };
    // What GET `path` answers (also for tests, without a socket). Any thread.
    Response handle(std::string_view path) const;

  private:
    HttpServer(Metrics& m, HealthLimits limits) : metrics_(m), limits_(limits) {}
    Metrics& metrics_;
    HealthLimits limits_;
    MHD_Daemon* mhd_ = nullptr;
    int fd_ = -1;
    uint16_t port_ = 0;
};

// Loop thread: publishes `collect()` into `m` every `period` and when publish_now() is
// called.
class MetricsPublisher {
  public:
    MetricsPublisher(Metrics& m, std::function<LoopSample()> collect)
        : metrics_(m), collect_(std::move(collect)) {}
    ~MetricsPublisher() { timer_.close(); }
    Status start(uv_loop_t* loop, std::chrono::milliseconds period);
    void publish_now();
    void close() { timer_.close(); }

  private:
    Metrics& metrics_;
    std::function<LoopSample()> collect_;
    ipc::uv::Timer timer_;
};

}  // namespace raftd::daemon
