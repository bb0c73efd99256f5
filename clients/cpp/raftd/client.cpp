// The C++ client (see client.h). Requests are encoded with ipc's protocol encoder; replies
// are decoded frame by frame from an input buffer. Each frame is moved out of the buffer
// before its callback runs, so a callback that sends (and therefore reads) more cannot
// invalidate the frame being dispatched.
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

const Obj* get(const Obj& m, std::string_view key) {
    if (m.type != msgpack::type::MAP) return nullptr;
    for (uint32_t i = 0; i < m.via.map.size; ++i) {
        const auto& kv = m.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR &&
            std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
            return &kv.val;
    }
    return nullptr;
}
uint64_t u64(const Obj& m, std::string_view key) {
    const Obj* o = get(m, key);
    return o && o->type == msgpack::type::POSITIVE_INTEGER ? o->via.u64 : 0;
}
bool boolean(const Obj& m, std::string_view key) {
    const Obj* o = get(m, key);
    return o && o->type == msgpack::type::BOOLEAN && o->via.boolean;
}
std::string str(const Obj& m, std::string_view key) {
    const Obj* o = get(m, key);
    if (!o) return {};
    if (o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
    if (o->type == msgpack::type::BIN) return std::string(o->via.bin.ptr, o->via.bin.size);
    return {};
}

Members parse_members(const Obj& m) {
    Members out;
    out.joint = boolean(m, "joint");
    const Obj* list = get(m, "members");
    if (!list || list->type != msgpack::type::ARRAY) return out;
    for (uint32_t i = 0; i < list->via.array.size; ++i) {
        const Obj& e = list->via.array.ptr[i];
        Member mm;
        mm.node = u64(e, "node");
        mm.addr = str(e, "addr");
        mm.voter = boolean(e, "voter");
        mm.outgoing = boolean(e, "outgoing");
        if (const Obj* p = get(e, "progress"); p && p->type == msgpack::type::MAP)
            mm.progress = Progress{u64(*p, "match"), u64(*p, "next"), str(*p, "state")};
        out.members.push_back(std::move(mm));
    }
    return out;
}

Error parse_error(const Obj& reply) {
    Error e;
    const Obj* em = get(reply, "error");
    if (!em) {
        e.code = ErrorCode::kInternal;
        e.code_name = "INTERNAL";
        e.message = "error reply without an error map";
        return e;
    }
    e.code_name = str(*em, "code");
    e.message = str(*em, "message");
    auto c = ipc::error_code_from_name(e.code_name);
    e.code = c ? static_cast<ErrorCode>(static_cast<int>(*c)) : ErrorCode::kInternal;
    if (const Obj* l = get(*em, "leader"); l && l->type == msgpack::type::MAP)
        e.leader = Leader{u64(*l, "node"), str(*l, "addr")};
    return e;
}

Error local_error(ErrorCode c, std::string msg) {
    Error e;
    e.code = c;
    e.code_name = std::string(error_code_name(c));
    e.message = std::move(msg);
    return e;
}

Event parse_event(const Obj& m) {
    Event ev;
    std::string kind = str(m, "ev");
    ev.sub = u64(m, "id");
    ev.index = u64(m, "index");
    ev.term = u64(m, "term");
    ev.data = str(m, "data");
    if (kind == "entry") {
        ev.kind = Event::Kind::kEntry;
        ev.type = str(m, "type");
        if (get(m, "members")) ev.members = parse_members(m);
    } else if (kind == "snapshot") {
        ev.kind = Event::Kind::kSnapshot;
        ev.offset = u64(m, "offset");
        ev.done = boolean(m, "done");
        ev.members = parse_members(m);
    } else {
        ev.kind = Event::Kind::kEnd;
        ev.error = parse_error(m);
    }
    return ev;
}

}  // namespace

// The public header keeps its own copy of the protocol's codes so that it does not expose
// ipc/; the two lists are bridged by casting, so they must stay in the same order.
#define RAFTD_SAME_CODE(name) \
    static_assert(static_cast<int>(ErrorCode::name) == static_cast<int>(ipc::ErrorCode::name))
RAFTD_SAME_CODE(kBadFrame);
RAFTD_SAME_CODE(kBadRequest);
RAFTD_SAME_CODE(kUnknownOp);
RAFTD_SAME_CODE(kTooLarge);
RAFTD_SAME_CODE(kUnavailable);
RAFTD_SAME_CODE(kIndeterminate);
RAFTD_SAME_CODE(kBusy);
RAFTD_SAME_CODE(kTimeout);
RAFTD_SAME_CODE(kNotFound);
RAFTD_SAME_CODE(kShuttingDown);
RAFTD_SAME_CODE(kInternal);
#undef RAFTD_SAME_CODE
static_assert(static_cast<int>(ErrorCode::kConnection) ==
              static_cast<int>(ipc::ErrorCode::kInternal) + 1);

std::string_view error_code_name(ErrorCode c) {
    if (c == ErrorCode::kConnection) return "CONNECTION";
    return ipc::error_code_name(static_cast<ipc::ErrorCode>(static_cast<int>(c)));
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
    std::string in;  // received bytes not yet dispatched
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

    // Reads what is available into `in`; false when the connection is gone.
    bool read_some() {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                in.append(buf, static_cast<size_t>(n));
                if (static_cast<size_t>(n) < sizeof buf) return true;
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

    // Dispatches every whole frame in `in`. False when the stream is corrupt.
    bool dispatch() {
        for (;;) {
            // Work on a private copy: handlers may send, and sending may read into `in`.
            std::string local;
            local.swap(in);
            size_t pos = 0;
            bool any = false, bad = false;
            while (!broken && local.size() - pos >= ipc::kFrameHeaderSize) {
                uint32_t len = ipc::read_be32(local.data() + pos);
                if (len == 0 || len > kClientMaxFrame) {
                    bad = true;
                    break;
                }
                if (local.size() - pos - ipc::kFrameHeaderSize < len) break;
                std::string_view body(local.data() + pos + ipc::kFrameHeaderSize, len);
                pos += ipc::kFrameHeaderSize + len;
                ipc::FrameLimits lim;
                lim.max_frame = kClientMaxFrame;
                lim.max_values = 1u << 24;
                auto f = ipc::decode_frame_body(body, lim);
                if (!f) {
                    bad = true;
                    break;
                }
                any = true;
                handle(f->root());
            }
            if (broken) return false;
            if (bad) {
                fail_all("the server sent a malformed frame");
                return false;
            }
            in.insert(0, local, pos, std::string::npos);
            if (!any) return true;
        }
    }

    void handle(const Obj& m) {
        if (get(m, "ev")) {
            uint64_t sub = u64(m, "id");
            auto it = subs.find(sub);
            if (it == subs.end()) return;
            Event ev = parse_event(m);
            EventFn fn = it->second;  // a copy: the callback may unsubscribe
            if (ev.kind == Event::Kind::kEnd) subs.erase(sub);
            fn(ev);
            return;
        }
        const Obj* id = get(m, "id");
        if (!id || id->type != msgpack::type::POSITIVE_INTEGER) return;  // nil id: not ours
        auto it = pending.find(id->via.u64);
        if (it == pending.end()) return;  // its caller gave up waiting
        Handler h = std::move(it->second);
        pending.erase(it);
        if (boolean(m, "ok")) {
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
    Result<T> call(const ipc::Request& r, std::function<T(const Obj&)> conv) {
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
    void call_async(const ipc::Request& r, std::function<T(const Obj&)> conv, Callback<T> cb) {
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
    return Hello{u64(m, "version"), u64(m, "node_id"), str(m, "cluster"), u64(m, "max_frame"),
                 u64(m, "max_entry")};
}
Proposed to_proposed(const Obj& m) {
    return Proposed{u64(m, "index"), u64(m, "term")};
}
NodeStatus to_status(const Obj& m) {
    NodeStatus s;
    s.node_id = u64(m, "node_id");
    s.cluster = str(m, "cluster");
    s.role = str(m, "role");
    s.term = u64(m, "term");
    s.leader = u64(m, "leader");
    s.commit = u64(m, "commit");
    s.first_index = u64(m, "first_index");
    s.last_index = u64(m, "last_index");
    s.snapshot_index = u64(m, "snapshot_index");
    s.wal_syncs = u64(m, "wal_syncs");
    s.members = parse_members(m);
    s.version = str(m, "version");
    return s;
}
Unit to_unit(const Obj&) {
    return Unit{};
}
uint64_t field_index(const Obj& m) {
    return u64(m, "index");
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
Result<uint64_t> Client::read_index() {
    return impl_->call<uint64_t>(ipc::ReadIndexRequest{}, field_index);
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
                                 [](const Obj& m) { return u64(m, "leader"); });
}
Result<uint64_t> Client::campaign() {
    return impl_->call<uint64_t>(ipc::CampaignRequest{},
                                 [](const Obj& m) { return u64(m, "term"); });
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
