// RawClient: a blocking Unix-socket client for tests that need to send arbitrary bytes
// (half frames, garbage, oversized lengths) and read frames back with a deadline.
//
// Owns: one socket descriptor. Never: retry or hide an error; tests check them.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "ipc/frame.h"
#include "ipc/protocol.h"

namespace raftd::ipc::testing {

// A decoded frame that owns its values.
struct Msg {
    msgpack::object_handle h;
    const msgpack::object* get(std::string_view key) const {
        const msgpack::object& o = h.get();
        if (o.type != msgpack::type::MAP) return nullptr;
        for (uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            if (kv.key.type == msgpack::type::STR &&
                std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
                return &kv.val;
        }
        return nullptr;
    }
    bool has(std::string_view k) const { return get(k) != nullptr; }
    uint64_t u64(std::string_view k) const {
        auto* o = get(k);
        return o && o->type == msgpack::type::POSITIVE_INTEGER ? o->via.u64 : ~0ull;
    }
    bool is_nil(std::string_view k) const {
        auto* o = get(k);
        return o && o->type == msgpack::type::NIL;
    }
    std::string str(std::string_view k) const {
        auto* o = get(k);
        if (!o) return "";
        if (o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
        if (o->type == msgpack::type::BIN) return std::string(o->via.bin.ptr, o->via.bin.size);
        return "";
    }
    bool ok() const {
        auto* o = get("ok");
        return o && o->type == msgpack::type::BOOLEAN && o->via.boolean;
    }
    std::string code() const {
        auto* e = get("error");
        if (!e || e->type != msgpack::type::MAP) return "";
        for (uint32_t i = 0; i < e->via.map.size; ++i) {
            const auto& kv = e->via.map.ptr[i];
            if (std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "code")
                return std::string(kv.val.via.str.ptr, kv.val.via.str.size);
        }
        return "";
    }
};

class RawClient {
  public:
    explicit RawClient(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~RawClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    bool send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }
    bool send(uint64_t id, const Request& r) {
        OutBuffer out;
        encode_request(out, id, r);
        return send_raw(out.flatten());
    }
    // A frame holding the msgpack encoding of `body` as given.
    static std::string frame(std::string_view body) {
        std::string s(4, '\0');
        uint32_t n = static_cast<uint32_t>(body.size());
        s[0] = static_cast<char>(n >> 24);
        s[1] = static_cast<char>(n >> 16);
        s[2] = static_cast<char>(n >> 8);
        s[3] = static_cast<char>(n);
        s.append(body);
        return s;
    }

    // The next frame, or nullopt on EOF/error/timeout (eof() tells which).
    std::optional<Msg> recv(int timeout_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (buf_.size() >= 4) {
                uint32_t n = read_be32(buf_.data());
                if (buf_.size() >= 4 + n) {
                    Msg m;
                    m.h = msgpack::unpack(buf_.data() + 4, n);
                    buf_.erase(0, 4 + n);
                    return m;
                }
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char tmp[65536];
            ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
            if (r <= 0) {
                eof_ = true;
                return std::nullopt;
            }
            buf_.append(tmp, static_cast<size_t>(r));
        }
    }
    // True once the server closed the connection (recv returned EOF or an error).
    bool eof() const { return eof_; }
    // Waits for EOF, discarding frames; true if it came before the deadline.
    bool wait_closed(int timeout_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (!eof_ && std::chrono::steady_clock::now() < deadline) (void)recv(100);
        return eof_;
    }

  private:
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
};

}  // namespace raftd::ipc::testing
