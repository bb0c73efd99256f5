// The client server (see server.h). One Conn per client; everything on the loop thread.
//
// Output path: replies and events are encoded into the connection's OutBuffer as they are
// produced; a Prepare and a Check handle flush every dirty connection once per loop
// iteration, so a burst of replies becomes one gathered uv_write.
// Lifetime: Conn is shared-owned by the server's table; Backend callbacks hold weak_ptrs, so
// a reply for a connection (or server) that is gone is simply dropped. A closed Conn is
// moved to a graveyard emptied at the next flush point, never destroyed inside its own
// callback.
#include "ipc/server.h"

#include <grp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace raftd::ipc {

namespace {

Error err(ErrorCode c, std::string msg) {
    return Error{c, std::move(msg), std::nullopt};
}

// A stream being replayed for one subscription.
struct Sub {
    uint64_t id = 0;
    raft::Index next = 0;  // next entry index to send
    bool in_snapshot = false;
    SnapshotInfo snap;
    uint64_t snap_offset = 0;
};

}  // namespace

struct Conn;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(uv::Loop& l, Backend& b, ServerOptions o) : loop(l), backend(b), opts(std::move(o)) {}

    uv::Loop& loop;
    Backend& backend;
    ServerOptions opts;
    std::vector<std::unique_ptr<uv::Pipe>> listeners;
    std::string unlink_path;  // socket file we created, removed at close
    uv::Prepare prepare;
    uv::Check check;
    uv::Timer close_timer;  // after close(): force-closes connections that do not drain
    bool hooks_started = false;
    bool closed = false;
    uint64_t next_conn = 1;
    std::map<uint64_t, std::shared_ptr<Conn>> conns;
    std::vector<std::weak_ptr<Conn>> dirty;
    std::vector<std::shared_ptr<Conn>> graveyard;
    // Snapshot writers whose finish() is outstanding, kept alive until it completes.
    std::map<uint64_t, std::unique_ptr<SnapshotWriter>> finishing;
    std::vector<std::unique_ptr<SnapshotWriter>> writer_graveyard;
    uint64_t next_finish = 1;
    LeaderHint leader;
    ServerStats st;

    Status start_hooks();
    Status listen_on(std::unique_ptr<uv::Pipe> p);
    void on_connection(uv::Pipe* listener, int status);
    void flush_all();
    void bury(uint64_t cid);
};

struct Conn : std::enable_shared_from_this<Conn> {
    Server::Impl* srv = nullptr;
    uint64_t cid = 0;
    uv::Pipe pipe;
    uv::Timer timer;
    FrameDecoder dec;
    OutBuffer out;
    uint64_t writing = 0;                  // bytes handed to libuv, not yet completed
    std::unordered_set<uint64_t> pending;  // request ids awaiting a reply
    std::map<uint64_t, Sub> subs;
    std::unique_ptr<SnapshotWriter> upload;
    raft::Index upload_index = 0;
    uint64_t upload_offset = 0;
    bool paused = false;  // reading stopped for output back-pressure
    bool eof = false;     // the client half-closed
    bool fatal = false;   // close once the output is flushed (TOO_LARGE)
    bool closed = false;
    bool is_dirty = false;
    bool pumping = false;
    enum class TimerMode { kNone, kPartial, kStall } timer_mode = TimerMode::kNone;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;

    explicit Conn(FrameLimits lim) : dec(lim) {}

    uint64_t queued() const { return out.size() + writing; }

    void mark_dirty() {
        if (is_dirty || closed) return;
        is_dirty = true;
        srv->dirty.push_back(weak_from_this());
    }

    void start_reading();
    void on_read(ssize_t n);
    void process_input();
    void handle_frame(const Frame& f);
    void handle_request(uint64_t id, Request&& req);
    void flush();
    void on_written(uint64_t n, int status);
    void after_output_change();
    // Arms the one timer for the connection's state: kStall while output is paused (or a
    // fatal error is being written), kPartial while part of a frame is buffered. `progress`
    // restarts it: bytes arrived, or a write completed.
    void update_timer(bool progress);
    void maybe_finish();
    void close(const char* why);

    template <typename T>
    Done<T> done_for(uint64_t id, std::function<void(Conn&, uint64_t, T&)> ok);
    template <typename T>
    Done<T> reply_done(uint64_t id);
    void send_error(std::optional<uint64_t> id, Error e);

    // subscriptions
    void subscribe(uint64_t id, const SubscribeRequest& r);
    void pump();
    bool pump_one(Sub& s);  // false: the subscription ended
    void end_sub(uint64_t id, const Error& why);
    void snapshot_chunk(uint64_t id, SnapshotRequest&& r);
};

// ---- replies ------------------------------------------------------------------------------

void Conn::send_error(std::optional<uint64_t> id, Error e) {
    if (!e.leader && e.code == ErrorCode::kUnavailable && srv->leader.node != raft::kNoNode)
        e.leader = srv->leader;
    encode_error(out, id, e);
    mark_dirty();
}

template <typename T>
Done<T> Conn::done_for(uint64_t id, std::function<void(Conn&, uint64_t, T&)> ok) {
    std::weak_ptr<Conn> weak = weak_from_this();
    return Done<T>([weak, id, ok = std::move(ok)](Outcome<T> r) {
        auto c = weak.lock();
        if (!c || c->closed) return;  // the client went away: drop the reply
        c->pending.erase(id);
        if (r.ok())
            ok(*c, id, r.value());
        else
            c->send_error(id, r.error());
        c->mark_dirty();
        c->maybe_finish();
    });
}

template <typename T>
Done<T> Conn::reply_done(uint64_t id) {
    return done_for<T>(id, [](Conn& c, uint64_t rid, T& v) { encode_reply(c.out, rid, v); });
}

// ---- input --------------------------------------------------------------------------------

void Conn::start_reading() {
    std::weak_ptr<Conn> weak = weak_from_this();
    Status s = pipe.read_start(
        [weak](size_t suggested) -> std::span<char> {
            auto c = weak.lock();
            if (!c) return {};
            auto [p, n] = c->dec.prepare(suggested);
            return {p, n};
        },
        [weak](ssize_t n, std::string_view) {
            if (auto c = weak.lock()) c->on_read(n);
        });
    if (!s) close("read_start failed");
}

void Conn::on_read(ssize_t n) {
    if (closed) return;
    if (n < 0) {
        if (n != UV_EOF) {
            close("read error");
            return;
        }
        // Half-close: answer what was asked, end subscriptions, then close.
        eof = true;
        (void)pipe.read_stop();
        subs.clear();
        if (upload) upload->abort(), upload.reset();
        process_input();
        update_timer(false);
        maybe_finish();
        return;
    }
    dec.commit(static_cast<size_t>(n));
    process_input();
    update_timer(true);
}

void Conn::process_input() {
    while (!closed && !fatal && !paused) {
        FrameDecoder::Decoded d = dec.next();
        if (d.kind == FrameDecoder::Kind::kNeedMore) break;
        if (d.kind == FrameDecoder::Kind::kTooLarge) {
            ++srv->st.bad_frames;
            send_error(std::nullopt, err(ErrorCode::kTooLarge, d.error));
            // The stream cannot be resynchronised: write the error, then close.
            fatal = true;
            (void)pipe.read_stop();
            update_timer(false);
            break;
        }
        if (d.kind == FrameDecoder::Kind::kBadFrame) {
            ++srv->st.bad_frames;
            send_error(std::nullopt, err(ErrorCode::kBadFrame, d.error));
        } else {
            handle_frame(d.frame);
        }
        after_output_change();
    }
    if (closed) return;
    dec.trim();
}

void Conn::handle_frame(const Frame& f) {
    ParseLimits lim;
    lim.max_entry = srv->opts.max_entry;
    Parsed p = parse_request(f, lim);
    ++srv->st.requests;
    if (!p.ok()) {
        send_error(p.id, std::move(p.error));
        return;
    }
    const uint64_t id = *p.id;
    if (pending.count(id) || subs.count(id)) {
        send_error(id, err(ErrorCode::kBadRequest,
                           "id " + std::to_string(id) + " is already in use on this connection"));
        return;
    }
    if (pending.size() >= srv->opts.max_inflight) {
        send_error(id, err(ErrorCode::kBusy, "too many requests in flight on this connection"));
        return;
    }
    handle_request(id, std::move(*p.request));
}

void Conn::handle_request(uint64_t id, Request&& req) {
    Backend& b = srv->backend;
    pending.insert(id);
    auto now = [&](auto&& reply) {
        pending.erase(id);
        encode_reply(out, id, reply);
        mark_dirty();
    };
    auto fail = [&](Error e) {
        pending.erase(id);
        send_error(id, std::move(e));
    };
    std::visit(
        [&](auto& r) {
            using R = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<R, HelloRequest>) {
                if (r.version != kProtocolVersion)
                    return fail(err(ErrorCode::kBadRequest, "unsupported protocol version " +
                                                                std::to_string(r.version) +
                                                                " (this server speaks 1)"));
                if (r.name) spdlog::info("client {}: hello from '{}'", cid, *r.name);
                NodeInfo ni = b.info();
                HelloReply h;
                h.node_id = ni.node_id;
                h.cluster = ni.cluster;
                h.max_frame = srv->opts.max_frame;
                h.max_entry = srv->opts.max_entry;
                now(h);
            } else if constexpr (std::is_same_v<R, PingRequest>) {
                now(OkReply{});
            } else if constexpr (std::is_same_v<R, ProposeRequest>) {
                b.propose(std::move(r.data), reply_done<ProposeReply>(id));
            } else if constexpr (std::is_same_v<R, SubscribeRequest>) {
                pending.erase(id);
                subscribe(id, r);
            } else if constexpr (std::is_same_v<R, UnsubscribeRequest>) {
                if (!subs.erase(r.sub))
                    return fail(err(ErrorCode::kNotFound,
                                    "no active subscription " + std::to_string(r.sub)));
                now(OkReply{});
            } else if constexpr (std::is_same_v<R, ReadIndexRequest>) {
                b.read_index(reply_done<ReadIndexReply>(id));
            } else if constexpr (std::is_same_v<R, SnapshotRequest>) {
                snapshot_chunk(id, std::move(r));
            } else if constexpr (std::is_same_v<R, StatusRequest>) {
                now(b.status());
            } else if constexpr (std::is_same_v<R, MembersRequest>) {
                now(b.members());
            } else if constexpr (std::is_same_v<R, TransferLeaderRequest>) {
                b.transfer_leader(r.to, reply_done<TransferLeaderReply>(id));
            } else if constexpr (std::is_same_v<R, CampaignRequest>) {
                b.campaign(reply_done<CampaignReply>(id));
            } else {
                // add_member, remove_member, promote, demote, change_members
                b.change_members(MemberChange(std::move(r)), reply_done<Membership>(id));
            }
        },
        req);
}

void Conn::snapshot_chunk(uint64_t id, SnapshotRequest&& r) {
    auto fail = [&](Error e) {
        pending.erase(id);
        send_error(id, std::move(e));
    };
    if (r.offset == 0) {
        if (upload) upload->abort(), upload.reset();
        auto w = srv->backend.begin_snapshot(r.index);
        if (!w) return fail(w.error());
        upload = std::move(w.value());
        upload_index = r.index;
        upload_offset = 0;
    } else if (!upload || r.index != upload_index || r.offset != upload_offset) {
        return fail(err(ErrorCode::kBadRequest,
                        "offset " + std::to_string(r.offset) +
                            " does not continue a snapshot upload on this connection" +
                            (upload ? " (expected " + std::to_string(upload_offset) + ")" : "")));
    }
    upload_offset += r.data.size();
    if (!r.done) {
        upload->write(std::move(r.data), done_for<Unit>(id, [](Conn& c, uint64_t rid, Unit&) {
                          encode_reply(c.out, rid, SnapshotReply{});
                      }));
        return;
    }
    // The final chunk: the writer must live until finish() completes, even if this
    // connection closes, so the server keeps it.
    uint64_t key = srv->next_finish++;
    SnapshotWriter* w = upload.get();
    srv->finishing.emplace(key, std::move(upload));
    std::weak_ptr<Server::Impl> ws = srv->weak_from_this();
    Done<raft::Index> inner = done_for<raft::Index>(id, [](Conn& c, uint64_t rid, raft::Index& i) {
        encode_reply(c.out, rid, SnapshotReply{i});
    });
    auto shared_inner = std::make_shared<Done<raft::Index>>(std::move(inner));
    w->finish(std::move(r.data), Done<raft::Index>([ws, key, shared_inner](Outcome<raft::Index> o) {
                  (*shared_inner)(std::move(o));
                  if (auto s = ws.lock()) {
                      // Not destroyed here: finish()'s caller may still be on the stack.
                      auto it = s->finishing.find(key);
                      if (it != s->finishing.end()) {
                          s->writer_graveyard.push_back(std::move(it->second));
                          s->finishing.erase(it);
                      }
                  }
              }));
}

// ---- output -------------------------------------------------------------------------------

void Conn::flush() {
    // A write that completes at once runs the follow-ups of a completed write here, and they
    // may queue more output (a subscription reading on); nothing would wake the loop for that
    // output, so it is written in the same call. After a few rounds the write is queued in
    // libuv, whose completion continues the stream without starving other connections.
    for (int round = 0;; ++round) {
        is_dirty = false;
        if (closed || out.empty()) return;
        auto buf = std::make_shared<OutBuffer>(std::move(out));
        out = OutBuffer();
        std::vector<uv_buf_t> bufs;
        for (std::string_view v : buf->pieces())
            bufs.push_back(
                uv_buf_init(const_cast<char*>(v.data()), static_cast<unsigned>(v.size())));
        const uint64_t n = buf->size();
        writing += n;
        ++srv->st.writes;
        srv->st.frames_out += buf->frames();
        std::weak_ptr<Conn> weak = weak_from_this();
        auto on_done = [weak, n](int status) {
            if (auto c = weak.lock()) c->on_written(n, status);
        };
        if (round >= 8) {
            if (!pipe.write(bufs, buf, on_done)) close("write failed");
            return;
        }
        auto sent = pipe.write_now_or_queue(bufs, buf, on_done);
        if (!sent) {
            close("write failed");
            return;
        }
        if (!*sent) return;
        on_written(n, 0);
    }
}

void Conn::on_written(uint64_t n, int status) {
    writing -= n;
    if (closed) return;
    if (status != 0) {
        close("write error");
        return;
    }
    // Output drained a little: subscriptions may read on, paused reading may resume.
    pump();
    after_output_change();
    if (!paused) process_input();
    update_timer(true);
    maybe_finish();
}

void Conn::after_output_change() {
    if (closed) return;
    const uint64_t q = queued();
    if (!paused && q > srv->opts.max_output_bytes) {
        paused = true;
        if (!eof && !fatal) (void)pipe.read_stop();
        update_timer(false);
    } else if (paused && q <= srv->opts.max_output_bytes / 2) {
        paused = false;
        if (!eof && !fatal) start_reading();
        update_timer(false);
    }
}

void Conn::update_timer(bool progress) {
    if (closed) return;
    TimerMode want = TimerMode::kNone;
    uint64_t ms = 0;
    if (paused || (fatal && queued() > 0)) {
        want = TimerMode::kStall;
        ms = srv->opts.stall_timeout_ms;
    } else if (!eof && dec.buffered() > 0) {
        want = TimerMode::kPartial;
        ms = srv->opts.partial_frame_timeout_ms;
    }
    if (want == TimerMode::kNone) {
        if (timer_mode != TimerMode::kNone) (void)timer.stop();
        timer_mode = want;
        return;
    }
    if (want == timer_mode && !progress) return;
    timer_mode = want;
    std::weak_ptr<Conn> weak = weak_from_this();
    (void)timer.start(ms, 0, [weak, want] {
        auto c = weak.lock();
        if (!c) return;
        c->close(want == TimerMode::kStall ? "client stopped reading its output"
                                           : "partial frame timed out");
    });
}

void Conn::maybe_finish() {
    if (closed) return;
    if (fatal && queued() == 0) {
        close("oversized frame length");
        return;
    }
    if (eof && pending.empty() && !upload && queued() == 0) close("client closed its side");
}

void Conn::close(const char* why) {
    if (closed) return;
    closed = true;
    spdlog::debug("client {}: closing: {}", cid, why);
    subs.clear();
    if (upload) upload->abort(), upload.reset();
    timer.close();
    pipe.close();
    srv->bury(cid);
}

// ---- subscriptions ------------------------------------------------------------------------

void Conn::subscribe(uint64_t id, const SubscribeRequest& r) {
    Backend& b = srv->backend;
    Sub s;
    s.id = id;
    if (r.from) {
        raft::Index last = b.status().last_index;
        if (*r.from > last + 1) {
            send_error(id,
                       err(ErrorCode::kBadRequest, "field 'from' is beyond the last index + 1 (" +
                                                       std::to_string(last + 1) + ")"));
            return;
        }
        s.next = *r.from;
    } else {
        s.next = b.commit_index() + 1;
    }
    encode_reply(out, id, OkReply{});
    mark_dirty();
    subs.emplace(id, s);
    pump();
}

void Conn::end_sub(uint64_t id, const Error& why) {
    if (subs.erase(id)) {
        encode_end_event(out, id, why);
        mark_dirty();
    }
}

void Conn::pump() {
    if (closed || pumping || subs.empty()) return;
    pumping = true;  // a backend read never re-enters, but be safe against recursion
    // Round-robin: each pass gives every subscription one read while there is room.
    bool progress = true;
    while (progress && !closed && queued() < srv->opts.sub_output_bytes) {
        progress = false;
        std::vector<uint64_t> ids;
        for (auto& [id, s] : subs)
            ids.push_back(id);
        for (uint64_t id : ids) {
            if (queued() >= srv->opts.sub_output_bytes) break;
            auto it = subs.find(id);
            if (it == subs.end()) continue;
            if (pump_one(it->second)) progress = true;
        }
    }
    pumping = false;
}

// One read for subscription `s`; true when it produced output.
bool Conn::pump_one(Sub& s) {
    Backend& b = srv->backend;
    const uint64_t room =
        srv->opts.sub_output_bytes - std::min(queued(), srv->opts.sub_output_bytes);
    if (!s.in_snapshot) {
        if (s.next > b.commit_index()) return false;
        auto r = b.read_entries(s.next, std::max<uint64_t>(room, 1));
        if (!r) {
            if (r.status().code() == Code::kCompacted) {
                s.in_snapshot = true;
                s.snap = b.latest_snapshot();
                s.snap_offset = 0;
                if (s.snap.index + 1 < s.next) {
                    // Nothing to stream would connect the snapshot to `next`.
                    end_sub(s.id, err(ErrorCode::kInternal, "log compacted beyond the snapshot"));
                    return false;
                }
                return true;
            }
            if (r.status().code() == Code::kNotFound) return false;  // not committed yet
            end_sub(s.id, err(ErrorCode::kInternal, r.status().to_string()));
            return false;
        }
        if (r->empty()) return false;
        for (const StreamEntry& e : *r) {
            if (e.entry.index != s.next) {
                end_sub(s.id, err(ErrorCode::kInternal,
                                  "log returned index " + std::to_string(e.entry.index) +
                                      ", expected " + std::to_string(s.next)));
                return false;
            }
            if (e.entry.type == raft::EntryType::kConfig && !e.config) {
                end_sub(s.id, err(ErrorCode::kInternal, "config entry without its configuration"));
                return false;
            }
            encode_entry_event(out, s.id, e.entry, e.config ? &*e.config : nullptr);
            ++s.next;
        }
        mark_dirty();
        return true;
    }
    // Streaming a snapshot.
    uint64_t chunk =
        std::max<uint64_t>(1, std::min<uint64_t>(room, srv->opts.snapshot_chunk_bytes));
    auto r = b.read_snapshot(s.snap.index, s.snap_offset, chunk);
    if (!r) {
        if (r.status().code() == Code::kNotFound) {
            // A newer snapshot replaced it: start over with that one (offset 0 tells the
            // client to drop the partial one).
            SnapshotInfo latest = b.latest_snapshot();
            if (latest.index == s.snap.index || latest.index == 0) {
                end_sub(s.id, err(ErrorCode::kInternal, r.status().to_string()));
                return false;
            }
            s.snap = latest;
            s.snap_offset = 0;
            return true;
        }
        end_sub(s.id, err(ErrorCode::kInternal, r.status().to_string()));
        return false;
    }
    SnapshotChunk c;
    c.index = s.snap.index;
    c.term = s.snap.term;
    c.offset = s.snap_offset;
    c.done = r->done;
    c.membership = s.snap.membership;
    s.snap_offset += r->data.size();
    c.data = raft::Payload(std::move(r->data));
    encode_snapshot_event(out, s.id, c);
    mark_dirty();
    if (c.done) {
        s.in_snapshot = false;
        s.next = s.snap.index + 1;
    }
    return true;
}

// ---- server -------------------------------------------------------------------------------

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

void Server::flush_now() {
    impl_->flush_all();
}

bool Server::has_output() const {
    return !impl_->dirty.empty();
}

void Server::Impl::flush_all() {
    std::vector<std::weak_ptr<Conn>> d;
    d.swap(dirty);
    for (auto& w : d)
        if (auto c = w.lock()) {
            c->flush();
            c->after_output_change();
        }
    graveyard.clear();
    writer_graveyard.clear();
}

void Server::Impl::bury(uint64_t cid) {
    auto it = conns.find(cid);
    if (it == conns.end()) return;
    graveyard.push_back(std::move(it->second));
    conns.erase(it);
    if (closed && conns.empty()) close_timer.close();
}

Status Server::Impl::listen_on(std::unique_ptr<uv::Pipe> p) {
    uv::Pipe* raw = p.get();
    std::weak_ptr<Impl> weak = weak_from_this();
    Status s = p->listen(opts.backlog, [weak, raw](int status) {
        if (auto self = weak.lock()) self->on_connection(raw, status);
    });
    if (!s) return s;
    listeners.push_back(std::move(p));
    return start_hooks();
}

void Server::Impl::on_connection(uv::Pipe* listener, int status) {
    if (closed) return;
    if (status != 0) {
        spdlog::warn("client socket: accept failed: {}", uv_strerror(status));
        return;
    }
    FrameLimits lim;
    lim.max_frame = opts.max_frame;
    auto c = std::make_shared<Conn>(lim);
    c->srv = this;
    c->cid = next_conn++;
    if (!c->pipe.init(loop) || !c->timer.init(loop) || !listener->accept(c->pipe)) {
        spdlog::warn("client socket: could not accept a connection");
        return;
    }
    ++st.accepted;
    struct ucred cred {};
    socklen_t len = sizeof cred;
    int fd = c->pipe.fileno();
    if (fd >= 0 && ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
        c->gid = cred.gid;
    }
    if (!opts.allowed_uids.empty() || !opts.allowed_gids.empty()) {
        bool ok = std::find(opts.allowed_uids.begin(), opts.allowed_uids.end(), c->uid) !=
                      opts.allowed_uids.end() ||
                  std::find(opts.allowed_gids.begin(), opts.allowed_gids.end(), c->gid) !=
                      opts.allowed_gids.end();
        if (!ok) {
            ++st.rejected;
            spdlog::warn("client {}: pid {} uid {} gid {} is not allowed; disconnected", c->cid,
                         c->pid, c->uid, c->gid);
            c->pipe.close();
            c->timer.close();
            return;
        }
    }
    spdlog::info("client {}: connected, pid {} uid {} gid {}", c->cid, c->pid, c->uid, c->gid);
    conns.emplace(c->cid, c);
    c->start_reading();
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
    for (auto& [id, c] : impl_->conns) {
        c->closed = true;
        c->timer.close();
        c->pipe.close();
    }
    impl_->conns.clear();
    impl_->graveyard.clear();
}

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

}  // namespace

Status Server::listen(const std::string& path, uint32_t mode, const std::string& group) {
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
    Status s = p->init(impl_->loop);
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
    s = impl_->listen_on(std::move(p));
    if (!s) {
        ::unlink(path.c_str());
        return s;
    }
    impl_->unlink_path = path;
    spdlog::info("client socket listening on {} (mode {:o}{}{})", path, mode,
                 group.empty() ? "" : ", group ", group);
    return Status::ok();
}

Status Server::adopt(int fd) {
    auto p = std::make_unique<uv::Pipe>();
    Status s = p->init(impl_->loop);
    if (s) s = p->open(fd);
    if (!s) {
        ::close(fd);
        return s;
    }
    return impl_->listen_on(std::move(p));
}

void Server::on_commit(raft::Index) {
    // Copy: pumping may close a connection (write error), which edits the table.
    std::vector<std::shared_ptr<Conn>> cs;
    for (auto& [id, c] : impl_->conns)
        if (!c->subs.empty()) cs.push_back(c);
    for (auto& c : cs)
        c->pump();
}

void Server::on_leader_change(LeaderHint leader) {
    impl_->leader = std::move(leader);
}

void Server::close() {
    Impl& s = *impl_;
    if (s.closed) return;
    s.closed = true;
    for (auto& l : s.listeners)
        l->close();
    s.listeners.clear();
    if (!s.unlink_path.empty()) ::unlink(s.unlink_path.c_str());
    std::vector<std::shared_ptr<Conn>> cs;
    for (auto& [id, c] : s.conns)
        cs.push_back(c);
    for (auto& c : cs) {
        std::vector<uint64_t> ids;
        for (auto& [id, sub] : c->subs)
            ids.push_back(id);
        for (uint64_t id : ids)
            c->end_sub(id, err(ErrorCode::kShuttingDown, "raftd is stopping"));
        c->flush();
        // Close once the final output is written (shutdown completes after queued writes),
        // or when the destructor runs first.
        std::weak_ptr<Conn> weak = c;
        if (!c->pipe.shutdown([weak](int) {
                if (auto cc = weak.lock()) cc->close("server closed");
            }))
            c->close("server closed");
    }
    if (!s.conns.empty() && s.close_timer.init(s.loop)) {
        std::weak_ptr<Impl> weak = impl_;
        (void)s.close_timer.start(1000, 0, [weak] {
            auto self = weak.lock();
            if (!self) return;
            std::vector<std::shared_ptr<Conn>> rest;
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
    st.connections = impl_->conns.size();
    st.subscriptions = 0;
    st.queued_bytes = 0;
    for (auto& [id, c] : impl_->conns) {
        st.subscriptions += c->subs.size();
        st.queued_bytes += c->queued();
    }
    return st;
}

const ServerOptions& Server::options() const {
    return impl_->opts;
}

}  // namespace raftd::ipc
