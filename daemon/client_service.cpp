// The client service: ipc::Server on the loop, served by NodeBackend (see client_service.h).
#include "daemon/client_service.h"

#include <spdlog/spdlog.h>

#include "daemon/backend.h"
#include "ipc/server.h"

namespace raftd::daemon {

namespace {

class ClientServiceImpl final : public ClientService {
  public:
    explicit ClientServiceImpl(NodeHost& host) : backend_(host) {}
    ~ClientServiceImpl() override {
        // The server first (it may still call into the backend while closing).
        server_.reset();
    }

    Status start(NodeHost& host, uv_loop_t* loop_raw, int activated_fd) {
        (void)loop_raw;
        const Config& c = host.config();
        ipc::ServerOptions so;
        so.max_frame = static_cast<uint32_t>(c.max_frame);
        so.max_entry = static_cast<uint32_t>(c.max_entry);
        so.allowed_uids = c.allowed_uids;
        so.allowed_gids = c.allowed_gids;
        so.request_timeout_ms = c.request_timeout_ms;
        so.leader_wait_requests = c.leader_wait_requests;
        so.leader_wait_bytes = c.leader_wait_bytes;
        if (Status st = backend_.start(); !st) return st;
        server_ = std::make_unique<ipc::Server>(host.loop_owner(), backend_, so);
        backend_.set_notify([this](raft::Index i) { server_->on_commit(i); },
                            [this](ipc::LeaderHint h) { server_->on_leader_change(std::move(h)); });
        // Stop accepting as soon as the node begins to stop; replies still owed are failed
        // by the backend with SHUTTING_DOWN before the connections close.
        host.events().clients_have_output = [this] { return server_->has_output(); };
        host.events().flush_clients = [this] { server_->flush_now(); };
        auto prev = host.events().stopping;
        host.events().stopping = [this, prev] {
            if (prev) prev();
            server_->close();
        };
        if (activated_fd >= 0) {
            if (Status st = server_->adopt(activated_fd); !st)
                return Status(st.code(), "socket activation (fd 3): " + st.message());
            spdlog::info("clients: using the socket passed by systemd (fd 3)");
            return Status::ok();
        }
        if (Status st = server_->listen(c.socket, c.socket_mode, c.socket_group); !st)
            return Status(st.code(), "socket " + c.socket + ": " + st.message());
        return Status::ok();
    }

    ipc::StatusReply status() const override { return backend_.status(); }
    ipc::ServerStats server_stats() const override {
        return server_ ? server_->stats() : ipc::ServerStats{};
    }

  private:
    NodeBackend backend_;
    std::unique_ptr<ipc::Server> server_;
};

}  // namespace

Result<std::unique_ptr<ClientService>> start_client_service(NodeHost& host, int activated_fd) {
    auto cs = std::make_unique<ClientServiceImpl>(host);
    if (Status st = cs->start(host, host.loop(), activated_fd); !st) return st;
    return std::unique_ptr<ClientService>(std::move(cs));
}

}  // namespace raftd::daemon
