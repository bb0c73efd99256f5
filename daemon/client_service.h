// ClientService: the daemon's service to its clients: the ipc::Server on the loop and the Backend
// that connects it to the NodeHost (proposals, reads, membership, snapshots, the commit stream).
//
// Owns: the Server and the Backend implementation.
// Never: make raft decisions beyond translating requests into Node calls.
// Thread rules: loop thread only.
#pragma once

#include <memory>

#include "daemon/host.h"
#include "ipc/server.h"
#include "raft/status.h"

namespace raftd::daemon {

// A handle: destroying it closes the server first, then the backend behind it.
class ClientService {
  public:
    virtual ~ClientService() = default;
    // For the metrics publisher (http.h), on the loop thread: the `status` reply and the
    // client server's counts.
    virtual ipc::StatusReply status() const = 0;
    virtual ipc::ServerStats server_stats() const = 0;
};

// Listens on cfg.socket (or adopts `activated_fd` when >= 0) and hooks into host.events().
Result<std::unique_ptr<ClientService>> start_client_service(NodeHost& host, int activated_fd);

}  // namespace raftd::daemon
