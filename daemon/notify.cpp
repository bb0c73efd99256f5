#include "daemon/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace raftd::daemon {
namespace {

uint64_t env_uint(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return 0;
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(v, v + std::strlen(v), n);
    return ec == std::errc() && *p == '\0' ? n : 0;
}

}  // namespace

Notifier::Notifier(std::string socket_path, uint64_t watchdog_usec)
    : path_(std::move(socket_path)), watchdog_usec_(watchdog_usec) {}

Notifier Notifier::from_env() {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    uint64_t usec = env_uint("WATCHDOG_USEC");
    uint64_t pid = env_uint("WATCHDOG_PID");
    if (pid != 0 && pid != static_cast<uint64_t>(::getpid()))
        usec = 0;  // meant for another process
    return Notifier(sock ? sock : "", usec);
}

Notifier::~Notifier() {
    if (fd_ >= 0) ::close(fd_);
}

Notifier::Notifier(Notifier&& o) noexcept
    : path_(std::move(o.path_)), watchdog_usec_(o.watchdog_usec_), fd_(o.fd_) {
    o.fd_ = -1;
    o.path_.clear();
}

std::optional<std::chrono::milliseconds> Notifier::watchdog_period() const {
    if (!enabled() || watchdog_usec_ == 0) return std::nullopt;
    auto half = std::chrono::milliseconds(watchdog_usec_ / 2000);
    return half.count() > 0 ? half : std::chrono::milliseconds(1);
}

Status Notifier::send(std::string_view state) {
    if (!enabled()) return Status::ok();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof(addr.sun_path) || (path_[0] != '/' && path_[0] != '@'))
        return Status::invalid_argument("NOTIFY_SOCKET \"" + path_ +
                                        "\" is neither an absolute path nor an abstract @name");
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
    if (path_[0] == '@')
        addr.sun_path[0] = '\0';  // abstract namespace: the name is not NUL-terminated
    else
        len += 1;
    if (fd_ < 0) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) return Status::io_error(std::string("notify socket: ") + std::strerror(errno));
    }
    ssize_t n;
    do {
        n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Status::io_error("sd_notify to " + path_ + ": " + std::strerror(errno));
    return Status::ok();
}

}  // namespace raftd::daemon
