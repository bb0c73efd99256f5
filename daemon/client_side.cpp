// Placeholder until ipc::Server lands: the node runs and forms a cluster, without clients.
#include "daemon/client_side.h"

namespace raftd::daemon {

Result<std::unique_ptr<ClientSide>> start_client_side(NodeHost&, int) {
    return std::make_unique<ClientSide>();
}

}  // namespace raftd::daemon
