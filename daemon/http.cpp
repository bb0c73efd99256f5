// The metrics/health/status HTTP listener and the loop's publisher: see http.h.
#include "daemon/http.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/config.h"
#include "daemon/transport.h"

namespace raftd::daemon {

namespace {

constexpr const char* kPrometheusType = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/,
                      size_t* upload_data_size, void** /*con_cls*/) {
    const auto* self = static_cast<const HttpServer*>(cls);
    HttpServer::Response r;
    if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
        r = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
    } else if (*upload_data_size != 0) {
        r = {400, "text/plain; charset=utf-8", "no request body expected\n"};
    } else {
        r = self->handle(url);
    }
    MHD_Response* resp =
        MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    if (r.status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_Result ret = MHD_queue_response(conn, static_cast<unsigned>(r.status), resp);
    MHD_destroy_response(resp);
    return ret;
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& addr, Metrics& m,
                                                      HealthLimits limits) {
    auto fail = [&addr](const std::string& why) {
        return Status::invalid_argument("metrics_listen " + addr + ": " + why);
    };
    sockaddr_storage sa;
    if (Status st = resolve(addr, sa); !st) return fail(st.message());
    std::unique_ptr<HttpServer> h(new HttpServer(m, limits));
    h->fd_ = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd_ < 0) return fail(std::strerror(errno));
    int one = 1;
    (void)::setsockopt(h->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const socklen_t len = sa.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (::bind(h->fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(h->fd_, 64) != 0)
        return fail(std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockname(h->fd_, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
        h->port_ =
            ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                             : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    // MHD's own thread polls the socket; a handful of scrapers at once is plenty, and a
    // client that stops sending is dropped after 10 s.
    h->mhd_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, nullptr, nullptr,
                               &on_request, h.get(), MHD_OPTION_LISTEN_SOCKET, h->fd_,
                               MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                               MHD_OPTION_END);
    if (!h->mhd_) return fail("libmicrohttpd could not start");
    return h;
}

HttpServer::~HttpServer() {
    if (mhd_) MHD_stop_daemon(mhd_);  // joins its thread
    if (fd_ >= 0) ::close(fd_);
}

HttpServer::Response HttpServer::handle(std::string_view path) const {
    if (path == "/metrics") {
        const LoopSample s = metrics_.sample();
        return {200, kPrometheusType, render_prometheus(metrics_, s)};
    }
    if (path == "/health") {
        const LoopSample s = metrics_.sample();
        HealthVerdict v =
            health(s, std::chrono::steady_clock::now(), metrics_.storage_write_age(), limits_);
        return {v.ok ? 200 : 503, "text/plain; charset=utf-8", v.reason + "\n"};
    }
    if (path == "/status") {
        LoopSample s = metrics_.sample();
        if (!s.valid) return {503, "text/plain; charset=utf-8", "starting\n"};
        return {200, "application/json", std::move(s.status_json)};
    }
    return {404, "text/plain; charset=utf-8", "not found: try /metrics, /health or /status\n"};
}

Status MetricsPublisher::start(uv_loop_t* loop, std::chrono::milliseconds period) {
    if (Status st = timer_.init(loop); !st) return st;
    const auto ms = static_cast<uint64_t>(std::max<int64_t>(1, period.count()));
    publish_now();
    return timer_.start(ms, ms, [this] { publish_now(); });
}

void MetricsPublisher::publish_now() {
    metrics_.publish(collect_());
}

}  // namespace raftd::daemon
