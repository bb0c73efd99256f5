// Listener (see listener.h): the socket file, adoption, accepting and the allow-list.
#include "ipc/listener.h"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace raftd::ipc {

namespace {

// True when something accepts connections at `path` (another raftd is using it).
bool socket_is_live(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return live;
}

Result<gid_t> resolve_group(const std::string& g) {
    if (!g.empty() &&
        std::all_of(g.begin(), g.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return static_cast<gid_t>(std::stoul(g));
    struct group grp {};
    struct group* res = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r(g.c_str(), &grp, buf.data(), buf.size(), &res) != 0 || !res)
        return Status::not_found("socket group '" + g + "' does not exist");
    return res->gr_gid;
}

Peer peer_of(int fd) {
    Peer p;
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (fd >= 0 && ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        p.pid = cred.pid;
        p.uid = cred.uid;
        p.gid = cred.gid;
    }
    return p;
}

}  // namespace

bool AccessList::allows(const Peer& p) const {
    if (uids_.empty() && gids_.empty()) return true;
    return std::find(uids_.begin(), uids_.end(), p.uid) != uids_.end() ||
           std::find(gids_.begin(), gids_.end(), p.gid) != gids_.end();
}

Status Listener::listen(const std::string& path, uint32_t mode, const std::string& group) {
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        return Status::invalid_argument("socket path too long (" + std::to_string(path.size()) +
                                        " bytes): " + path);
    struct stat sb {};
    if (::lstat(path.c_str(), &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode))
            return Status::invalid_argument("socket path exists and is not a socket: " + path);
        if (socket_is_live(path))
            return Status::busy("socket " + path + " is in use by another process");
        ::unlink(path.c_str());  // stale: left by a process that died
    }
    auto p = std::make_unique<uv::Pipe>();
    Status s = p->init(loop_);
    if (s) s = p->bind(path);
    if (!s) return s;
    // Mode and group are set before listen(), so no client can connect in between.
    if (::chmod(path.c_str(), mode) != 0) {
        int e = errno;
        ::unlink(path.c_str());
        return Status::io_error("chmod " + path + ": " + std::strerror(e));
    }
    if (!group.empty()) {
        auto g = resolve_group(group);
        if (!g || ::chown(path.c_str(), static_cast<uid_t>(-1), *g) != 0) {
            int e = errno;
            ::unlink(path.c_str());
            return g ? Status::io_error("chown " + path + " to group " + group + ": " +
                                        std::strerror(e))
                     : g.status();
        }
    }
    s = start(std::move(p));
    if (!s) {
        ::unlink(path.c_str());
        return s;
    }
    unlink_path_ = path;
    spdlog::info("client socket listening on {} (mode {:o}{}{})", path, mode,
                 group.empty() ? "" : ", group ", group);
    return Status::ok();
}

Status Listener::adopt(int fd) {
    auto p = std::make_unique<uv::Pipe>();
    Status s = p->init(loop_);
    if (s) s = p->open(fd);
    if (!s) {
        ::close(fd);
        return s;
    }
    return start(std::move(p));
}

Status Listener::start(std::unique_ptr<uv::Pipe> p) {
    uv::Pipe* raw = p.get();
    // `this` outlives the callback: closing the pipe (close(), the destructor) drops it.
    Status s = p->listen(backlog_, [this, raw](int status) { on_connection(raw, status); });
    if (!s) return s;
    pipes_.push_back(std::move(p));
    return Status::ok();
}

void Listener::on_connection(uv::Pipe* listener, int status) {
    if (closed_) return;
    if (status != 0) {
        spdlog::warn("client socket: accept failed: {}", uv_strerror(status));
        return;
    }
    const uint64_t id = next_id_++;
    uv::Pipe pipe;
    if (!pipe.init(loop_) || !listener->accept(pipe)) {
        spdlog::warn("client socket: could not accept a connection");
        return;
    }
    ++accepted_;
    const Peer peer = peer_of(pipe.fileno());
    if (!access_.allows(peer)) {
        ++rejected_;
        spdlog::warn("client {}: pid {} uid {} gid {} is not allowed; disconnected", id, peer.pid,
                     peer.uid, peer.gid);
        pipe.close();
        return;
    }
    on_accept_(id, std::move(pipe), peer);
}

void Listener::close() {
    if (closed_) return;
    closed_ = true;
    for (auto& l : pipes_)
        l->close();
    pipes_.clear();
    if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
}

}  // namespace raftd::ipc
