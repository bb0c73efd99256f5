// The C++ client (see client.h). Frames, requests, replies and events go through the one
// protocol codec (ipc/frame.h, ipc/protocol.h: libcodec); this file owns the socket, the
// table of requests in flight and the conversion to the public types. Each frame is decoded
// into values before its callback runs, so a callback that sends (and therefore reads) more
// cannot invalidate what is being dispatched.
#include "raftd/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "ipc/frame.h"
#include "ipc/protocol.h"

namespace raftd::client {

namespace {

namespace ipc = raftd::ipc;
using Obj = msgpack::object;

constexpr uint32_t kClientMaxFrame = 64u << 20;  // above any server's max_frame default

ipc::FrameLimits client_limits() {
    ipc::FrameLimits lim;
    lim.max_frame = kClientMaxFrame;
    lim.max_values = 1u << 24;
    return lim;
}

// The codec (ipc/protocol.h) decodes; these only convert its values to the public types,
// which keep ipc/ out of the installed header.
Members to_members(const ipc::Membership& m) {
    Members out;
    out.joint = m.joint;
    for (const ipc::MemberInfo& mi : m.members) {
        Member mm{mi.node, mi.addr, mi.voter, mi.outgoing, std::nullopt};
        if (mi.progress)
            mm.progress = Progress{mi.progress->match, mi.progress->next, mi.progress->state};
        out.members.push_back(std::move(mm));
    }
    return out;
}

Error to_error(const ipc::Error& ie, std::string code_name) {
    Error e;
    e.code = static_cast<ErrorCode>(static_cast<int>(ie.code));
    e.code_name = std::move(code_name);
    e.message = ie.message;
    if (ie.leader) e.leader = Leader{ie.leader->node, ie.leader->addr};
    return e;
}

Error parse_error(const Obj& reply) {
    std::string code;
    ipc::Error e = ipc::decode_error(reply, &code);
    return to_error(e, std::move(code));
}

Error local_error(ErrorCode c, std::string msg) {
    return make_error(c, std::move(msg));
}

Error malformed(const Status& st) {
    return local_error(ErrorCode::kInternal, "malformed reply from the server: " + st.message());
}

Event to_event(const ipc::Event& ie) {
    Event ev;
    ev.sub = ie.sub;
    ev.index = ie.index;
    ev.term = ie.term;
    ev.data = std::string(ie.data);
    switch (ie.kind) {
        case ipc::Event::Kind::kEntry:
            ev.kind = Event::Kind::kEntry;
            ev.type = ie.type;
            break;
        case ipc::Event::Kind::kSnapshot:
            ev.kind = Event::Kind::kSnapshot;
            ev.offset = ie.offset;
            ev.done = ie.done;
            break;
        case ipc::Event::Kind::kEnd:
            ev.kind = Event::Kind::kEnd;
            ev.error = to_error(*ie.error, ie.error_code);
            break;
    }
    if (ie.membership) ev.members = to_members(*ie.membership);
    return ev;
}

}  // namespace

// The public ErrorCode and ipc::ErrorCode are generated from one list (raftd/error_codes.h),
// so a protocol code converts by value; kConnection is the client's own, after them.
static_assert(static_cast<int>(ErrorCode::kConnection) ==
              static_cast<int>(ipc::ErrorCode::kInternal) + 1);

std::string_view error_code_name(ErrorCode c) {
    if (c == ErrorCode::kConnection) return "CONNECTION";
    return ipc::error_code_name(static_cast<ipc::ErrorCode>(static_cast<int>(c)));
}

Error make_error(ErrorCode c, std::string message) {
    Error e;
    e.code = c;
    e.code_name = std::string(error_code_name(c));
    e.message = std::move(message);
    return e;
}

std::string Error::to_string() const {
    std::string s = code_name.empty() ? std::string(error_code_name(code)) : code_name;
    s += ": ";
    s += message;
    if (leader && leader->node != 0) {
        s += " (leader " + std::to_string(leader->node);
        if (!leader->addr.empty()) s += " at " + leader->addr;
        s += ")";
    }
    return s;
}

std::string default_socket(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* e = std::getenv("RAFTD_SOCKET"); e && *e) return e;
    return "./raftd.sock";
}

// A reply handler: exactly one of ok/err is non-null.
using Handler = std::function<void(const Obj* ok, const Error* err)>;

struct Client::Impl {
    int fd = -1;
    Options opts;
    Hello hello;
    uint64_t next_id = 1;
    std::map<uint64_t, Handler> pending;
    std::map<uint64_t, EventFn> subs;
    ipc::FrameDecoder in{client_limits()};  // received bytes not yet dispatched
    std::string out_err;
    bool broken = false;

    ~Impl() {
        if (fd >= 0) ::close(fd);
    }

    void fail_all(const std::string& why) {
        if (broken) return;
        broken = true;
        out_err = why;
        if (fd >= 0) ::close(fd), fd = -1;
        Error e = local_error(ErrorCode::kConnection, why);
        auto p = std::move(pending);
        pending.clear();
        for (auto& [id, h] : p)
            h(nullptr, &e);
        auto s = std::move(subs);
        subs.clear();
        for (auto& [id, fn] : s) {
            Event ev;
            ev.kind = Event::Kind::kEnd;
            ev.sub = id;
            ev.error = e;
            fn(ev);
        }
    }

    // Reads what is available into `in`; false when the connection is gone. Called while a
    // handler runs (write_all), so a frame handed to a handler must not be used once its
    // handler may send: handle() converts it first.
    bool read_some() {
        for (;;) {
            auto [buf, cap] = in.prepare();
            ssize_t n = ::recv(fd, buf, cap, MSG_DONTWAIT);
            if (n > 0) {
                in.commit(static_cast<size_t>(n));
                if (static_cast<size_t>(n) < cap) return true;
                continue;
            }
            if (n == 0) {
                fail_all("the server closed the connection");
                return false;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            if (errno == EINTR) continue;
            fail_all(std::string("recv: ") + std::strerror(errno));
            return false;
        }
    }

    // Writes all of `bytes`, reading (not dispatching) while the socket is full so the
    // server never waits on us while we wait on it.
    bool write_all(std::string_view bytes) {
        while (!bytes.empty()) {
            if (broken) return false;
            ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                bytes.remove_prefix(static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                fail_all(std::string("send: ") + std::strerror(errno));
                return false;
            }
            pollfd p{fd, POLLOUT | POLLIN, 0};
            if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
                fail_all(std::string("poll: ") + std::strerror(errno));
                return false;
            }
            if (p.revents & (POLLIN | POLLHUP | POLLERR))
                if (!read_some()) return false;
        }
        return true;
    }

    uint64_t send(const ipc::Request& r, Handler h) {
        uint64_t id = next_id++;
        if (broken) {
            Error e = local_error(ErrorCode::kConnection, out_err);
            h(nullptr, &e);
            return id;
        }
        ipc::OutBuffer out;
        ipc::encode_request(out, id, r);
        pending.emplace(id, std::move(h));
        write_all(out.flatten());  // on failure fail_all() already answered the handler
        return id;
    }

    // Dispatches every whole frame in `in`, in order (a handler's own synchronous call may
    // dispatch the later ones). False when the stream is corrupt.
    bool dispatch() {
        while (!broken) {
            ipc::FrameDecoder::Decoded d = in.next();
            if (d.kind == ipc::FrameDecoder::Kind::kNeedMore) {
                in.trim();
                return true;
            }
            if (d.kind != ipc::FrameDecoder::Kind::kFrame) {
                fail_all("the server sent a malformed frame: " + d.error);
                return false;
            }
            handle(d.frame.root());
        }
        return false;
    }

    // Decodes before calling out: the frame borrows `in`, which a handler's sends refill.
    void handle(const Obj& m) {
        const ipc::ReplyHead head = ipc::decode_reply_head(m);
        if (head.event) {
            auto it = subs.find(head.id.value_or(0));
            if (it == subs.end()) return;
            auto ie = ipc::decode_event(m);
            Event ev = ie ? to_event(*ie) : Event{};
            if (!ie) {
                ev.kind = Event::Kind::kEnd;
                ev.sub = it->first;
                ev.error = malformed(ie.status());
            }
            EventFn fn = it->second;  // a copy: the callback may unsubscribe
            if (ev.kind == Event::Kind::kEnd) subs.erase(it);
            fn(ev);
            return;
        }
        if (!head.id) return;  // nil id: not ours
        auto it = pending.find(*head.id);
        if (it == pending.end()) return;  // its caller gave up waiting
        Handler h = std::move(it->second);
        pending.erase(it);
        if (head.ok) {
            h(&m, nullptr);
        } else {
            Error e = parse_error(m);
            h(nullptr, &e);
        }
    }

    Result<Unit> poll_once(int timeout_ms) {
        if (broken) return local_error(ErrorCode::kConnection, out_err);
        if (!dispatch()) return local_error(ErrorCode::kConnection, out_err);
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR)
            return local_error(ErrorCode::kConnection,
                               std::string("poll: ") + std::strerror(errno));
        if (r > 0 && !read_some()) {
            dispatch();  // what arrived before the close
            return local_error(ErrorCode::kConnection, out_err);
        }
        if (!dispatch()) return local_error(ErrorCode::kConnection, out_err);
        return Unit{};
    }

    // Runs the loop until `done()` or the call deadline.
    bool wait_for(const std::function<bool()>& done) {
        auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.timeout_ms);
        while (!done()) {
            int left = -1;
            if (opts.timeout_ms > 0) {
                auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
                if (ms <= 0) return false;
                left = static_cast<int>(ms);
            }
            if (!poll_once(left)) return done();
        }
        return true;
    }

    // A synchronous call: send, wait for this reply, convert it.
    template <typename T>
    Result<T> call(const ipc::Request& r, std::function<Result<T>(const Obj&)> conv) {
        std::optional<Result<T>> out;
        uint64_t id = send(r, [&](const Obj* ok, const Error* err) {
            if (ok)
                out.emplace(conv(*ok));
            else
                out.emplace(*err);
        });
        if (!wait_for([&] { return out.has_value(); })) {
            pending.erase(id);
            return local_error(ErrorCode::kTimeout, "no reply within the client's deadline");
        }
        return std::move(*out);
    }

    template <typename T>
    void call_async(const ipc::Request& r, std::function<Result<T>(const Obj&)> conv,
                    Callback<T> cb) {
        send(r, [conv = std::move(conv), cb = std::move(cb)](const Obj* ok, const Error* err) {
            if (ok)
                cb(conv(*ok));
            else
                cb(*err);
        });
    }
};

namespace {

Hello to_hello(const Obj& m) {
    ipc::HelloReply h = ipc::decode_hello_reply(m);
    return Hello{h.version, h.node_id, h.cluster, h.max_frame, h.max_entry};
}
Proposed to_proposed(const Obj& m) {
    ipc::ProposeReply p = ipc::decode_propose_reply(m);
    return Proposed{p.index, p.term};
}
Result<NodeStatus> to_status(const Obj& m) {
    auto r = ipc::decode_status_reply(m);
    if (!r) return malformed(r.status());
    NodeStatus s;
    s.node_id = r->node_id;
    s.cluster = r->cluster;
    s.role = r->role;
    s.term = r->term;
    s.leader = r->leader;
    s.commit = r->commit;
    s.first_index = r->first_index;
    s.last_index = r->last_index;
    s.snapshot_index = r->snapshot_index;
    s.wal_syncs = r->wal_syncs;
    s.members = to_members(r->membership);
    s.version = r->version;
    return s;
}
Result<Members> parse_members(const Obj& m) {
    auto r = ipc::decode_membership(m);
    if (!r) return malformed(r.status());
    return to_members(*r);
}
uint64_t field(const Obj& m, std::string_view key) {
    return ipc::find_uint(m, key).value_or(0);
}
Unit to_unit(const Obj&) {
    return Unit{};
}
uint64_t field_index(const Obj& m) {
    return field(m, "index");
}

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const std::string& path, Options options) {
    sockaddr_un a{};
    if (path.size() >= sizeof a.sun_path)
        return local_error(ErrorCode::kConnection, "socket path too long: " + path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return local_error(ErrorCode::kConnection, std::string("socket: ") + std::strerror(errno));
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        int e = errno;
        ::close(fd);
        return local_error(ErrorCode::kConnection,
                           "cannot connect to " + path + ": " + std::strerror(e));
    }
    auto impl = std::make_unique<Impl>();
    impl->fd = fd;
    impl->opts = options;
    std::unique_ptr<Client> c(new Client(std::move(impl)));
    if (!options.name.empty()) {
        auto h = c->hello();
        if (!h) return h.error();
    }
    return c;
}

const Hello& Client::server() const {
    return impl_->hello;
}

Result<Hello> Client::hello() {
    ipc::HelloRequest r;
    if (!impl_->opts.name.empty()) r.name = impl_->opts.name;
    auto h = impl_->call<Hello>(r, to_hello);
    if (h) impl_->hello = *h;
    return h;
}
Result<Unit> Client::ping() {
    return impl_->call<Unit>(ipc::PingRequest{}, to_unit);
}
Result<Proposed> Client::propose(std::string_view data) {
    return impl_->call<Proposed>(ipc::ProposeRequest{raft::Payload(data.data(), data.size())},
                                 to_proposed);
}
Result<uint64_t> Client::read_index(bool lease) {
    return impl_->call<uint64_t>(ipc::ReadIndexRequest{lease}, field_index);
}
Result<NodeStatus> Client::status() {
    return impl_->call<NodeStatus>(ipc::StatusRequest{}, to_status);
}
Result<Members> Client::members() {
    return impl_->call<Members>(ipc::MembersRequest{}, parse_members);
}
Result<Members> Client::add_member(uint64_t node, const std::string& addr, bool learner) {
    return impl_->call<Members>(ipc::AddMemberRequest{node, addr, learner}, parse_members);
}
Result<Members> Client::remove_member(uint64_t node) {
    return impl_->call<Members>(ipc::RemoveMemberRequest{node}, parse_members);
}
Result<Members> Client::promote(uint64_t node) {
    return impl_->call<Members>(ipc::PromoteRequest{node}, parse_members);
}
Result<Members> Client::demote(uint64_t node) {
    return impl_->call<Members>(ipc::DemoteRequest{node}, parse_members);
}
Result<Members> Client::change_members(const std::vector<MemberSpec>& add,
                                       const std::vector<uint64_t>& remove) {
    ipc::ChangeMembersRequest r;
    for (const MemberSpec& m : add)
        r.add.push_back({m.node, m.addr, m.learner});
    r.remove = remove;
    return impl_->call<Members>(r, parse_members);
}
Result<uint64_t> Client::transfer_leader(uint64_t to) {
    return impl_->call<uint64_t>(ipc::TransferLeaderRequest{to},
                                 [](const Obj& m) { return field(m, "leader"); });
}
Result<uint64_t> Client::campaign() {
    return impl_->call<uint64_t>(ipc::CampaignRequest{},
                                 [](const Obj& m) { return field(m, "term"); });
}

Result<uint64_t> Client::snapshot(uint64_t index, std::string_view data, size_t chunk_bytes) {
    if (chunk_bytes == 0)
        chunk_bytes = impl_->hello.max_entry ? impl_->hello.max_entry : (1u << 20);
    // Every chunk but the last is pipelined; the first error wins.
    // The handlers reference this frame's locals, so every exit path forgets the ones
    // still pending.
    std::optional<Error> first_error;
    size_t outstanding = 0;
    uint64_t offset = 0;
    std::vector<uint64_t> ids;
    struct Forget {
        Impl& impl;
        std::vector<uint64_t>& ids;
        ~Forget() {
            for (uint64_t id : ids)
                impl.pending.erase(id);
        }
    } forget{*impl_, ids};
    while (data.size() > chunk_bytes) {
        ipc::SnapshotRequest r{index, offset, raft::Payload(data.data(), chunk_bytes), false};
        ++outstanding;
        ids.push_back(impl_->send(r, [&](const Obj*, const Error* err) {
            --outstanding;
            if (err && !first_error) first_error = *err;
        }));
        offset += chunk_bytes;
        data.remove_prefix(chunk_bytes);
        if (first_error) break;
    }
    if (!first_error) {
        auto last = impl_->call<uint64_t>(
            ipc::SnapshotRequest{index, offset, raft::Payload(data.data(), data.size()), true},
            field_index);
        if (!impl_->wait_for([&] { return outstanding == 0; }))
            return local_error(ErrorCode::kTimeout, "no reply within the client's deadline");
        if (first_error) return *first_error;
        return last;
    }
    impl_->wait_for([&] { return outstanding == 0; });
    return *first_error;
}

void Client::ping_async(Callback<Unit> cb) {
    impl_->call_async<Unit>(ipc::PingRequest{}, to_unit, std::move(cb));
}
void Client::propose_async(std::string_view data, Callback<Proposed> cb) {
    impl_->call_async<Proposed>(ipc::ProposeRequest{raft::Payload(data.data(), data.size())},
                                to_proposed, std::move(cb));
}
void Client::read_index_async(Callback<uint64_t> cb) {
    impl_->call_async<uint64_t>(ipc::ReadIndexRequest{}, field_index, std::move(cb));
}
void Client::status_async(Callback<NodeStatus> cb) {
    impl_->call_async<NodeStatus>(ipc::StatusRequest{}, to_status, std::move(cb));
}

Result<uint64_t> Client::subscribe(std::optional<uint64_t> from, EventFn on_event) {
    // Registered before sending: events follow the reply immediately, possibly in the same
    // read, and must find their handler.
    const uint64_t id = impl_->next_id;
    impl_->subs[id] = std::move(on_event);
    auto r = impl_->call<uint64_t>(ipc::SubscribeRequest{from}, [id](const Obj&) { return id; });
    if (!r) impl_->subs.erase(id);
    return r;
}

Result<Unit> Client::unsubscribe(uint64_t sub) {
    auto r = impl_->call<Unit>(ipc::UnsubscribeRequest{sub}, to_unit);
    impl_->subs.erase(sub);
    return r;
}

Result<Unit> Client::poll(int timeout_ms) {
    return impl_->poll_once(timeout_ms);
}

Result<Unit> Client::wait_all(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!impl_->pending.empty()) {
        int left = -1;
        if (timeout_ms >= 0) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
            if (ms <= 0) return local_error(ErrorCode::kTimeout, "requests still in flight");
            left = static_cast<int>(ms);
        }
        auto r = impl_->poll_once(left);
        if (!r) return r;
    }
    return Unit{};
}

size_t Client::in_flight() const {
    return impl_->pending.size();
}

int Client::fd() const {
    return impl_->fd;
}

}  // namespace raftd::client
