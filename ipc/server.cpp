// The client server (see server.h): the owner that wires the rooms together. The Listener
// hands over accepted connections; each Connection (connection.h) reads, dispatches
// (dispatch.h), streams (subscription.h) and uploads (upload.h) on its own; the server keeps
// the table of connections and the flush points.
//
// Output path: connections encode replies and events as they are produced and register
// here; a Prepare and a Check handle flush every such connection once per loop iteration,
// so a burst of replies becomes one gathered uv_write.
// Lifetime: a Connection is shared-owned by the table; callbacks hold weak_ptrs, so a reply
// for a connection (or server) that is gone is dropped. A closed Connection is moved to a
// graveyard emptied at the next flush point, never destroyed inside its own callback.
#include "ipc/server.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <map>

#include "ipc/connection.h"
#include "ipc/listener.h"
#include "ipc/upload.h"

namespace raftd::ipc {

struct Server::Impl final : ConnectionOwner, std::enable_shared_from_this<Server::Impl> {
    Impl(uv::Loop& l, Backend& b, ServerOptions o)
        : loop(l),
          backend_(b),
          opts(std::move(o)),
          listener(l, opts.backlog, AccessList(opts.allowed_uids, opts.allowed_gids),
                   [this](uint64_t id, uv::Pipe pipe, const Peer& peer) {
                       on_accept(id, std::move(pipe), peer);
                   }),
          waits(l, b,
                LeaderWait::Limits{opts.leader_wait_requests, opts.leader_wait_bytes,
                                   opts.request_timeout_ms}) {}

    uv::Loop& loop;
    Backend& backend_;
    ServerOptions opts;
    Listener listener;
    uv::Prepare prepare;
    uv::Check check;
    uv::Timer close_timer;  // after close(): force-closes connections that do not drain
    bool hooks_started = false;
    bool stopping = false;        // close() ran
    FinishingWriters finishing_;  // before the connections: their uploads refer to it
    LeaderWait waits;             // before the connections: its completions reply to them
    std::map<uint64_t, std::shared_ptr<Connection>> conns;
    std::vector<std::weak_ptr<Connection>> dirty;
    std::vector<std::shared_ptr<Connection>> graveyard;
    LeaderHint leader_;
    ServerStats st;

    // ConnectionOwner
    Backend& backend() override { return backend_; }
    const ServerOptions& options() const override { return opts; }
    const LeaderHint& leader() const override { return leader_; }
    FinishingWriters& finishing() override { return finishing_; }
    LeaderWait& leader_wait() override { return waits; }
    ServerStats& counters() override { return st; }
    void wants_flush(std::weak_ptr<Connection> c) override { dirty.push_back(std::move(c)); }
    void closed(uint64_t id) override;

    Status start_hooks();
    void on_accept(uint64_t id, uv::Pipe pipe, const Peer& peer);
    void flush_all();
};

Status Server::Impl::start_hooks() {
    if (hooks_started) return Status::ok();
    Status s = prepare.init(loop);
    if (s) s = check.init(loop);
    if (!s) return s;
    std::weak_ptr<Impl> weak = weak_from_this();
    auto cb = [weak] {
        if (auto self = weak.lock()) self->flush_all();
    };
    s = prepare.start(cb);
    if (s) s = check.start(cb);
    if (!s) return s;
    // The hooks alone must not keep the loop alive.
    prepare.unref();
    check.unref();
    hooks_started = true;
    return Status::ok();
}

void Server::Impl::flush_all() {
    // A leader the Backend knows but has not announced yet: waiting requests go now (their
    // immediate answers are written below).
    if (waits.size() != 0) waits.drain();
    std::vector<std::weak_ptr<Connection>> d;
    d.swap(dirty);
    for (auto& w : d)
        if (auto c = w.lock()) c->flush();
    graveyard.clear();
    finishing_.collect();
}

void Server::Impl::closed(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    graveyard.push_back(std::move(it->second));
    conns.erase(it);
    waits.drop(id);
    if (stopping && conns.empty()) close_timer.close();
}

void Server::Impl::on_accept(uint64_t id, uv::Pipe pipe, const Peer& peer) {
    if (stopping) return;
    spdlog::debug("client {}: connected, pid {} uid {} gid {}", id, peer.pid, peer.uid, peer.gid);
    auto c = std::make_shared<Connection>(*this, id, std::move(pipe));
    conns.emplace(id, c);
    if (Status s = c->start(); !s) spdlog::warn("client {}: {}", id, s.to_string());
}

Server::Server(uv::Loop& loop, Backend& backend, ServerOptions options)
    : impl_(std::make_shared<Impl>(loop, backend, std::move(options))) {
    // libuv writes to sockets with write(2): a client that closes its end would otherwise
    // kill the whole daemon with SIGPIPE. Only the default action is replaced, never a
    // handler the process installed itself.
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
        std::signal(SIGPIPE, SIG_IGN);
}

Server::~Server() {
    close();
    // Whatever close() could not flush is dropped now.
    for (auto& [id, c] : impl_->conns)
        c->discard();
    impl_->conns.clear();
    impl_->graveyard.clear();
}

Status Server::listen(const std::string& path, uint32_t mode, const std::string& group) {
    Status s = impl_->start_hooks();
    if (!s) return s;
    return impl_->listener.listen(path, mode, group);
}

Status Server::adopt(int fd) {
    Status s = impl_->start_hooks();
    if (!s) {
        ::close(fd);
        return s;
    }
    return impl_->listener.adopt(fd);
}

void Server::on_commit(raft::Index) {
    // Copy: pumping may close a connection (write error), which edits the table.
    std::vector<std::shared_ptr<Connection>> cs;
    for (auto& [id, c] : impl_->conns)
        if (c->subscription_count() > 0) cs.push_back(c);
    for (auto& c : cs)
        c->pump();
}

void Server::flush_now() {
    impl_->flush_all();
}

bool Server::has_output() const {
    return !impl_->dirty.empty();
}

void Server::on_leader_change(LeaderHint leader) {
    impl_->leader_ = std::move(leader);
    impl_->waits.drain();
}

void Server::close() {
    Impl& s = *impl_;
    if (s.stopping) return;
    s.stopping = true;
    s.listener.close();
    // Requests still waiting for a leader never reached the Backend: nothing was done.
    s.waits.close(Error{ErrorCode::kShuttingDown,
                        "raftd is stopping; the request waited for a leader and was not performed",
                        std::nullopt});
    std::vector<std::shared_ptr<Connection>> cs;
    for (auto& [id, c] : s.conns)
        cs.push_back(c);
    for (auto& c : cs)
        c->shut_down(Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt});
    if (!s.conns.empty() && s.close_timer.init(s.loop)) {
        std::weak_ptr<Impl> weak = impl_;
        (void)s.close_timer.start(1000, 0, [weak] {
            auto self = weak.lock();
            if (!self) return;
            std::vector<std::shared_ptr<Connection>> rest;
            for (auto& [id, c] : self->conns)
                rest.push_back(c);
            for (auto& c : rest)
                c->close("did not drain after shutdown");
            self->close_timer.close();
        });
    }
    s.prepare.close();
    s.check.close();
    s.flush_all();
}

ServerStats Server::stats() const {
    ServerStats st = impl_->st;
    st.accepted = impl_->listener.accepted();
    st.rejected = impl_->listener.rejected();
    st.connections = impl_->conns.size();
    st.waiting = impl_->waits.size();
    st.subscriptions = 0;
    st.stalled_subscribers = 0;
    st.queued_bytes = 0;
    for (auto& [id, c] : impl_->conns) {
        st.subscriptions += c->subscription_count();
        st.stalled_subscribers += c->subscription_count() > 0 && c->paused();
        st.queued_bytes += c->queued();
    }
    return st;
}

const ServerOptions& Server::options() const {
    return impl_->opts;
}

}  // namespace raftd::ipc
