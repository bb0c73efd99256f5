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

// A decoded frame that owns its values. Read with the codec's reply decoders.
struct Msg {
    msgpack::object_handle h;
    const msgpack::object* get(std::string_view key) const { return map_find(h.get(), key); }
    bool has(std::string_view k) const { return get(k) != nullptr; }
    uint64_t u64(std::string_view k) const { return find_uint(h.get(), k).value_or(~0ull); }
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
    bool ok() const { return decode_reply_head(h.get()).ok; }
    // The error code as sent; "" when the frame has no error map.
    std::string code() const {
        if (!has("error")) return "";
        std::string c;
        (void)decode_error(h.get(), &c);
        return c;
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
        OutBuffer out;
        FrameWriter w(out);
        out.write(body.data(), body.size());
        w.finish();
        return out.flatten();
    }

    // The next frame, or nullopt on EOF/error/timeout (eof() tells which).
    std::optional<Msg> recv(int timeout_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            FrameDecoder::Decoded d = in_.next();
            if (d.kind == FrameDecoder::Kind::kFrame) {
                Msg m;  // a copy the test owns: the frame borrows in_'s buffer
                m.h = msgpack::unpack(d.frame.body().data(), d.frame.body().size());
                return m;
            }
            if (d.kind != FrameDecoder::Kind::kNeedMore) return std::nullopt;  // not the server's
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            auto [buf, cap] = in_.prepare();
            ssize_t r = ::recv(fd_, buf, cap, 0);
            if (r <= 0) {
                eof_ = true;
                return std::nullopt;
            }
            in_.commit(static_cast<size_t>(r));
        }
    }
    // True once the server closed the connection (recv returned EOF or an error).
    bool eof() const { return eof_; }
    // Waits for EOF, discarding frames; true if it came before the deadline.
    bool wait_closed(int timeout_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (!eof_ && std::chrono::steady_clock::now() < deadline)
            (void)recv(100);
        return eof_;
    }

  private:
    int fd_ = -1;
    FrameDecoder in_{FrameLimits{64u << 20, 16, 1u << 24}};  // above any server's limits
    bool eof_ = false;
};

}  // namespace raftd::ipc::testing
