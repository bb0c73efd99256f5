// Server: the client-facing Unix-socket server of docs/protocol.md, on the daemon's loop.
//
// Owns: the Listener (listener.h: socket file, activation fd, allow-list), the table of
// Connections (connection.h: each with its decoder, output queue, in-flight ids, streams
// from subscription.h and upload from upload.h; requests go through dispatch.h), the flush
// points that write their output, and the writers of finishing uploads. Calls into a
// Backend for everything that involves Raft.
// Never: make a Raft decision, block the loop, buffer without bound for a client (reading
// pauses above max_output_bytes; subscriptions read ahead only below sub_output_bytes), or
// let one client's bad input affect another client.
//
// Thread rules: loop thread only, including on_commit()/on_leader_change() (the daemon calls
// them from its Ready handling on the loop). The Backend must outlive the Server, or at
// least every call the Server makes into it; Backend callbacks may outlive the Server.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ipc/backend.h"
#include "ipc/frame.h"
#include "ipc/protocol.h"
#include "ipc/uv.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raftd::ipc {

struct ServerOptions {
    uint32_t max_frame = kDefaultMaxFrame;       // advertised by hello
    uint32_t max_entry = kDefaultMaxEntry;       // propose data / snapshot chunk limit
    uint32_t max_inflight = 1024;                // requests awaiting a reply, per connection
    uint64_t max_output_bytes = 8u << 20;        // queued output above which reading pauses
    uint64_t sub_output_bytes = 1u << 20;        // queued output below which subscriptions read
    uint64_t stall_timeout_ms = 30000;           // paused with no output progress: close
    uint64_t partial_frame_timeout_ms = 30000;   // part of a frame, no new bytes: close
    uint64_t snapshot_chunk_bytes = 256u << 10;  // chunk size of snapshot events
    uint32_t max_subscriptions = 64;             // subscriptions per connection (BUSY beyond)
    // Requests that need a leader while none is known wait for one (leader_wait.h): at most
    // this long unless the request says (timeout_ms), and at most this many / bytes at once.
    uint64_t request_timeout_ms = 5000;
    uint64_t leader_wait_requests = 1024;
    uint64_t leader_wait_bytes = 16u << 20;
    // Access (docs/protocol.md 1): when either list is non-empty, a peer whose uid is not in
    // allowed_uids and whose gid is not in allowed_gids is disconnected at accept.
    std::vector<uint32_t> allowed_uids;
    std::vector<uint32_t> allowed_gids;
    int backlog = 512;
};

struct ServerStats {
    uint64_t connections = 0;          // open now
    uint64_t accepted = 0;             // since start
    uint64_t rejected = 0;             // refused by the allow-list
    uint64_t subscriptions = 0;        // active now
    uint64_t stalled_subscribers = 0;  // connections with subscriptions, paused by back-pressure
    uint64_t queued_bytes = 0;         // output queued over all connections
    uint64_t requests = 0;             // requests parsed since start
    uint64_t bad_frames = 0;           // BAD_FRAME / TOO_LARGE frame errors since start
    uint64_t writes = 0;               // uv_write calls since start (each gathers many frames)
    uint64_t frames_out = 0;           // replies and events written since start
    uint64_t waiting = 0;              // requests waiting for a leader now
};

class Server {
  public:
    Server(uv::Loop& loop, Backend& backend, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds a Unix socket at `path` (replacing a stale socket file there, never any other
    // kind of file), sets its mode (e.g. 0660) and, when `group` is non-empty, its group (a
    // name or a numeric gid), and starts accepting.
    Status listen(const std::string& path, uint32_t mode, const std::string& group);
    // Accepts on an already-listening socket descriptor, e.g. from systemd socket
    // activation (LISTEN_FDS). The server owns `fd` from now on.
    Status adopt(int fd);

    // The backend's commit index (committed and locally durable) advanced to `index`, or a
    // snapshot was installed: subscriptions waiting for new entries read on.
    void on_commit(raft::Index index);
    // Writes the output queued on every connection now instead of at the next flush point
    // (the daemon calls it once a batch's replies are queued, before it writes to peers).
    void flush_now();
    // Some connection has output queued that flush_now() would write.
    bool has_output() const;
    // The leader changed (kNoNode: none known): used for error hints, and requests waiting
    // for a leader proceed once the Backend knows one.
    void on_leader_change(LeaderHint leader);

    // Stops accepting, ends every subscription with SHUTTING_DOWN, and closes all
    // connections after trying to flush their queued output. Safe to call twice; the
    // destructor calls it. Late Backend callbacks are dropped.
    void close();

    ServerStats stats() const;
    const ServerOptions& options() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace raftd::ipc
