// sd_notify without libsystemd: state changes as datagrams to $NOTIFY_SOCKET.
//
// Owns: one AF_UNIX datagram socket, opened on first use, and the parsed watchdog interval.
// raftd works the same without systemd: when NOTIFY_SOCKET is unset every call is a no-op
// returning ok.
// Never: block (datagram sends to the notify socket are non-blocking), or fail the daemon
// because systemd is unreachable: callers log a failed send and carry on.
//
// Thread rules: loop thread only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "raft/status.h"

namespace raftd::daemon {

class Notifier {
  public:
    // `socket_path`: a filesystem path, or an abstract name written with a leading '@'.
    // `watchdog_usec`: systemd's WatchdogSec in microseconds, 0 when the watchdog is off.
    Notifier(std::string socket_path, uint64_t watchdog_usec);
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog applies to us only
    // when WATCHDOG_PID is unset or equals our pid).
    static Notifier from_env();
    ~Notifier();
    Notifier(Notifier&& o) noexcept;
    Notifier& operator=(Notifier&&) = delete;
    Notifier(const Notifier&) = delete;

    bool enabled() const { return !path_.empty(); }

    // How often to send WATCHDOG=1: half the interval systemd waits, as sd_watchdog_enabled(3)
    // advises, so one late loop iteration does not get the service killed.
    std::optional<std::chrono::milliseconds> watchdog_period() const;

    Status ready(std::string_view status) { return send("READY=1\nSTATUS=" + std::string(status)); }
    Status status(std::string_view status) { return send("STATUS=" + std::string(status)); }
    Status stopping() { return send("STOPPING=1"); }
    Status watchdog() { return send("WATCHDOG=1"); }
    Status reloading() { return send("RELOADING=1"); }

    // Sends newline-separated assignments as one datagram.
    Status send(std::string_view state);

  private:
    std::string path_;
    uint64_t watchdog_usec_;
    int fd_ = -1;
};

}  // namespace raftd::daemon
