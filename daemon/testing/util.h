// Helpers shared by the daemon/ test suites: scratch directories that clean up after
// themselves, and doctest printers for daemon types. Test-only; never included by library code.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/pending.h"

namespace raftd::daemon::testing {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "raftd-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(std::string_view name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::string& path, std::string_view text) {
    std::ofstream(path, std::ios::binary) << text;
}

// "127.0.0.1:PORT" with a port that was free a moment ago (bound, read, closed).
inline std::string free_loopback_addr() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    ::close(fd);
    return "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
}

}  // namespace raftd::daemon::testing

// Fates print by name in failed checks.
namespace doctest {
template <>
struct StringMaker<raftd::daemon::Fate> {
    static String convert(raftd::daemon::Fate f) {
        return String(std::string(raftd::daemon::fate_name(f)).c_str());
    }
};
template <>
struct StringMaker<std::vector<raftd::daemon::Fate>> {
    static String convert(const std::vector<raftd::daemon::Fate>& v) {
        std::string s = "[";
        for (auto f : v)
            s += std::string(s.size() > 1 ? ", " : "") + std::string(raftd::daemon::fate_name(f));
        return String((s + "]").c_str());
    }
};
}  // namespace doctest
