// raftbench's side of the client protocol (docs/protocol.md): request encoding into a
// plain byte string, blocking one-off requests (status, hello) and the facts raftbench
// takes from a status reply. Replies are decoded with ipc/frame.h, the codec raftd uses.
//
// Owns: nothing beyond the strings it returns. Never: reads raftd internals; everything here
// is the public protocol plus SO_PEERCRED on the client socket (which names raftd's pid).
// Thread rules: none shared.
#pragma once

#include <msgpack.hpp>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/frame.h"
#include "raft/status.h"

namespace raftd::bench {

// msgpack-c stream appending to a std::string.
struct StringSink {
    std::string* s;
    void write(const char* p, size_t n) { s->append(p, n); }
};

// Appends one frame {"op": op, "id": id[, "data": data]} to `out`.
inline void append_request(std::string& out, std::string_view op, uint64_t id,
                           const std::string* data = nullptr) {
    size_t at = out.size();
    out.append(4, '\0');
    StringSink sink{&out};
    msgpack::packer<StringSink> pk(sink);
    pk.pack_map(data ? 3 : 2);
    pk.pack_str(2).pack_str_body("op", 2);
    pk.pack_str(uint32_t(op.size())).pack_str_body(op.data(), uint32_t(op.size()));
    pk.pack_str(2).pack_str_body("id", 2);
    pk.pack_uint64(id);
    if (data) {
        pk.pack_str(4).pack_str_body("data", 4);
        pk.pack_bin(uint32_t(data->size())).pack_bin_body(data->data(), uint32_t(data->size()));
    }
    uint32_t len = uint32_t(out.size() - at - 4);
    out[at] = char(len >> 24);
    out[at + 1] = char(len >> 16);
    out[at + 2] = char(len >> 8);
    out[at + 3] = char(len);
}

inline Result<int> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) return Status::invalid_argument("socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int e = errno;
        ::close(fd);
        return Status::io_error("connect " + path + ": " + std::strerror(e));
    }
    return fd;
}

// The pid of the process serving a connected Unix socket.
inline std::optional<int> peer_pid(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) return std::nullopt;
    return cred.pid;
}

// What raftbench reads from a `status` reply. Counters raftd may not report are optional.
struct NodeFacts {
    uint64_t node_id = 0;
    std::string role;
    uint64_t leader = 0;
    uint64_t commit = 0;
    std::optional<uint64_t> wal_syncs;  // fdatasync calls of the WAL since start
    int pid = 0;                        // from SO_PEERCRED
};

inline const msgpack::object* field(const ipc::Frame& f, std::string_view key) { return f.find(key); }

inline std::optional<uint64_t> as_uint(const msgpack::object* o) {
    if (o && o->type == msgpack::type::POSITIVE_INTEGER) return o->via.u64;
    return std::nullopt;
}

inline std::string as_str(const msgpack::object* o) {
    if (o && o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
    return {};
}

// The error code of a reply with "ok": false, or "" when ok.
inline std::string error_code(const ipc::Frame& f) {
    const msgpack::object* ok = f.find("ok");
    if (ok && ok->type == msgpack::type::BOOLEAN && ok->via.boolean) return {};
    const msgpack::object* err = f.find("error");
    if (err && err->type == msgpack::type::MAP) {
        for (uint32_t i = 0; i < err->via.map.size; i++) {
            const auto& kv = err->via.map.ptr[i];
            if (as_str(&kv.key) == "code") {
                std::string c = as_str(&kv.val);
                return c.empty() ? "INTERNAL" : c;
            }
        }
    }
    return "INTERNAL";
}

// Sends one `status` request on a fresh connection and waits for its reply.
inline Result<NodeFacts> query_status(const std::string& path) {
    auto fd = connect_unix(path);
    if (!fd) return fd.status();
    NodeFacts facts;
    facts.pid = peer_pid(*fd).value_or(0);
    std::string req;
    append_request(req, "status", 1);
    const char* p = req.data();
    size_t left = req.size();
    while (left > 0) {
        ssize_t n = ::write(*fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(*fd);
            return Status::io_error("write to " + path + " failed");
        }
        p += n;
        left -= size_t(n);
    }
    ipc::FrameDecoder dec;
    for (;;) {
        auto d = dec.next();
        if (d.kind == ipc::FrameDecoder::Kind::kFrame) {
            ::close(*fd);
            if (std::string code = error_code(d.frame); !code.empty())
                return Status::unavailable("status on " + path + ": " + code);
            facts.node_id = as_uint(d.frame.find("node_id")).value_or(0);
            facts.role = as_str(d.frame.find("role"));
            facts.leader = as_uint(d.frame.find("leader")).value_or(0);
            facts.commit = as_uint(d.frame.find("commit")).value_or(0);
            facts.wal_syncs = as_uint(d.frame.find("wal_syncs"));
            return facts;
        }
        if (d.kind != ipc::FrameDecoder::Kind::kNeedMore) {
            ::close(*fd);
            return Status::corruption("bad status reply from " + path + ": " + d.error);
        }
        auto [buf, cap] = dec.prepare();
        ssize_t n = ::read(*fd, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(*fd);
            return Status::io_error("no status reply from " + path);
        }
        dec.commit(size_t(n));
    }
}

}  // namespace raftd::bench
