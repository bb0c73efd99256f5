#include "daemon/notify.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "daemon/testing/util.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

// The systemd side of the conversation: a bound datagram socket.
class FakeSystemd {
  public:
    explicit FakeSystemd(const std::string& name) : name_(name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, name.data(), name.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        if (name[0] == '@') a.sun_path[0] = '\0';
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0);
        timeval tv{5, 0};  // a missing datagram fails the test instead of hanging it
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~FakeSystemd() { ::close(fd_); }
    std::string recv() {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        REQUIRE(n >= 0);
        return std::string(buf, static_cast<size_t>(n));
    }

  private:
    std::string name_;
    int fd_;
};

}  // namespace

TEST_CASE("ready_status_stopping_and_watchdog_arrive_as_datagrams_on_a_path_socket") {
    testing::TempDir dir;
    std::string path = dir.file("notify");
    FakeSystemd systemd(path);
    Notifier n(path, 0);
    REQUIRE(n.enabled());
    REQUIRE(n.ready("follower, term 1").is_ok());
    CHECK(systemd.recv() == "READY=1\nSTATUS=follower, term 1");
    REQUIRE(n.status("leader, term 2").is_ok());
    CHECK(systemd.recv() == "STATUS=leader, term 2");
    REQUIRE(n.watchdog().is_ok());
    CHECK(systemd.recv() == "WATCHDOG=1");
    REQUIRE(n.stopping().is_ok());
    CHECK(systemd.recv() == "STOPPING=1");
}

TEST_CASE("abstract_notify_socket_names_start_with_at") {
    std::string name = "@raftd-notify-test-" + std::to_string(::getpid());
    FakeSystemd systemd(name);
    Notifier n(name, 0);
    REQUIRE(n.ready("ok").is_ok());
    CHECK(systemd.recv() == "READY=1\nSTATUS=ok");
}

TEST_CASE("without_notify_socket_every_call_is_a_quiet_no_op") {
    Notifier n("", 0);
    CHECK_FALSE(n.enabled());
    CHECK(n.ready("x").is_ok());
    CHECK_FALSE(n.watchdog_period().has_value());
}

TEST_CASE("watchdog_fires_at_half_the_interval_and_only_for_our_pid") {
    testing::TempDir dir;
    ::setenv("NOTIFY_SOCKET", dir.file("notify").c_str(), 1);
    ::setenv("WATCHDOG_USEC", "3000000", 1);
    ::unsetenv("WATCHDOG_PID");
    CHECK(Notifier::from_env().watchdog_period() == std::chrono::milliseconds(1500));
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    CHECK(Notifier::from_env().watchdog_period() == std::chrono::milliseconds(1500));
    ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
    CHECK_FALSE(Notifier::from_env().watchdog_period().has_value());
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
}

TEST_CASE("an_unreachable_notify_socket_is_an_error_value_not_a_crash") {
    testing::TempDir dir;
    Notifier n(dir.file("nobody-listens"), 0);
    Status st = n.ready("x");
    CHECK_FALSE(st.is_ok());
    CHECK(st.code() == Code::kIoError);
    Notifier relative("relative/path", 0);
    CHECK(relative.ready("x").code() == Code::kInvalidArgument);
}
