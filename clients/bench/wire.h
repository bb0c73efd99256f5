// raftbench's side of the client protocol (docs/protocol.md): connecting, the blocking
// one-off `status` request and the facts raftbench takes from its reply. Requests are
// encoded and replies decoded by the protocol codec raftd itself uses (ipc/frame.h,
// ipc/protocol.h: libcodec).
//
// Owns: nothing beyond the strings it returns. Never: reads raftd internals; everything here
// is the public protocol plus SO_PEERCRED on the client socket (which names raftd's pid).
// Thread rules: none shared.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/frame.h"
#include "ipc/protocol.h"
#include "raft/status.h"

namespace raftd::bench {

inline Result<int> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path))
        return Status::invalid_argument("socket path too long: " + path);
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
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
        return std::nullopt;
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

// The error code of a reply with "ok": false ("INTERNAL" when it names none), or "" when ok.
inline std::string error_code(const msgpack::object& root, const ipc::ReplyHead& head) {
    if (head.ok) return {};
    std::string code;
    (void)ipc::decode_error(root, &code);
    return code.empty() ? "INTERNAL" : code;
}

// Sends one `status` request on a fresh connection and waits for its reply.
inline Result<NodeFacts> query_status(const std::string& path) {
    auto fd = connect_unix(path);
    if (!fd) return fd.status();
    NodeFacts facts;
    facts.pid = peer_pid(*fd).value_or(0);
    ipc::OutBuffer out;
    ipc::encode_request(out, 1, ipc::StatusRequest{});
    const std::string req = out.flatten();
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
            const msgpack::object& root = d.frame.root();
            if (std::string code = error_code(root, ipc::decode_reply_head(root)); !code.empty())
                return Status::unavailable("status on " + path + ": " + code);
            auto st = ipc::decode_status_reply(root);
            if (!st)
                return Status::corruption("bad status reply from " + path + ": " +
                                          st.status().message());
            facts.node_id = st->node_id;
            facts.role = st->role;
            facts.leader = st->leader;
            facts.commit = st->commit;
            facts.wal_syncs = ipc::find_uint(root, "wal_syncs");  // absent: raftd does not count
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
