// Listener: the listening side of the client socket (docs/protocol.md 1, docs/operations.md):
// the socket file (bound, given its mode and group before anyone can connect, a stale one
// replaced), a descriptor adopted from socket activation, accepting, and the SO_PEERCRED
// allow-list applied to each accepted peer.
//
// Owns: the listening pipes, the socket file it created (removed by close()), the counters
// of accepted and refused connections, and the ids it gives connections.
// Never: read from or write to an accepted connection (it hands each one over), remove a
// file that is not a socket or a socket another process still accepts on, or let a refused
// peer see a single byte.
//
// Thread rules: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ipc/uv.h"
#include "raft/status.h"

namespace raftd::ipc {

// Who is on the other end of an accepted connection (zeros when the kernel did not say).
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The allow-list: a peer passes when its uid or its gid is listed; empty lists allow all.
class AccessList {
  public:
    AccessList(std::vector<uint32_t> uids, std::vector<uint32_t> gids)
        : uids_(std::move(uids)), gids_(std::move(gids)) {}
    bool allows(const Peer& p) const;

  private:
    std::vector<uint32_t> uids_, gids_;
};

class Listener {
  public:
    // An accepted, allowed connection: its id, its pipe (open on the loop) and its peer.
    using AcceptFn = std::function<void(uint64_t id, uv::Pipe pipe, const Peer& peer)>;

    Listener(uv::Loop& loop, int backlog, AccessList access, AcceptFn on_accept)
        : loop_(loop),
          backlog_(backlog),
          access_(std::move(access)),
          on_accept_(std::move(on_accept)) {}
    ~Listener() { close(); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // See Server::listen().
    Status listen(const std::string& path, uint32_t mode, const std::string& group);
    // See Server::adopt(); owns `fd` from now on, also when this fails.
    Status adopt(int fd);
    // Stops accepting and removes the socket file it created. Safe to call twice.
    void close();

    uint64_t accepted() const { return accepted_; }
    uint64_t rejected() const { return rejected_; }

  private:
    Status start(std::unique_ptr<uv::Pipe> p);
    void on_connection(uv::Pipe* listener, int status);

    uv::Loop& loop_;
    int backlog_;
    AccessList access_;
    AcceptFn on_accept_;
    std::vector<std::unique_ptr<uv::Pipe>> pipes_;
    std::string unlink_path_;  // socket file we created, removed at close
    bool closed_ = false;
    uint64_t next_id_ = 1;
    uint64_t accepted_ = 0;
    uint64_t rejected_ = 0;
};

}  // namespace raftd::ipc
