// Peer transport: see transport.h and docs/peer-protocol.md.
#include "daemon/transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "daemon/config.h"
#include "daemon/peer_codec.h"
#include "raft/node.h"

namespace raftd::daemon {

namespace {
// Handshake frames are tiny; a dialler that sends more before being accepted is not a peer.
constexpr uint32_t kHandshakeMaxFrame = 4096;
// Largest TLS record payload: frames are gathered up to it, and one read takes a few records.
constexpr size_t kTlsRecord = 16 * 1024;
constexpr size_t kTlsReadBuf = 256 * 1024;

std::vector<uv_buf_t> bufs_of(const ipc::OutBuffer& out) {
    std::vector<uv_buf_t> bufs;
    for (std::string_view v : out.pieces())
        bufs.push_back(uv_buf_init(const_cast<char*>(v.data()), static_cast<unsigned>(v.size())));
    return bufs;
}

// "raftd://c/node/1, raftd://c/node/2" or "no raftd:// URI": what a certificate names.
std::string names_of(const std::vector<std::string>& uris) {
    std::string out;
    for (const auto& u : uris)
        out += (out.empty() ? "" : ", ") + u;
    return out.empty() ? "no URI" : out;
}

bool names(const TlsSession& tls, const std::string& uri) {
    const auto& u = tls.peer_uris();
    return std::find(u.begin(), u.end(), uri) != u.end();
}
}  // namespace

struct Transport::Peer {
    // kTls: the TLS handshake runs (TLS on only); kHandshake: our hello is sent.
    enum class State { kIdle, kConnecting, kTls, kHandshake, kReady };
    raft::NodeId id = raft::kNoNode;
    std::string addr;
    State state = State::kIdle;
    ipc::uv::Tcp tcp;
    ipc::uv::Timer redial;
    bool redial_pending = false;
    std::unique_ptr<ipc::FrameDecoder> dec;  // the welcome, then only EOF is expected
    std::unique_ptr<TlsSession> tls;         // TLS on only
    ipc::OutBuffer queue;                    // frames not handed to libuv yet
    size_t inflight = 0;                     // bytes of the write libuv is working on
    bool writing = false;
    uint64_t backoff_ms = 0;
    uint64_t dropped_since_log = 0;
    bool logged_down = false;          // "cannot reach" logged once per outage, not per attempt
    std::string last_refusal;          // a TLS refusal of ours, warned once until it changes
    PeerCounters* counters = nullptr;  // in Transport::counters_
};

struct Transport::Inbound {
    uint64_t serial = 0;
    ipc::uv::Tcp tcp;
    std::unique_ptr<ipc::FrameDecoder> dec;
    std::unique_ptr<TlsSession> tls;    // TLS on only
    raft::NodeId peer = raft::kNoNode;  // set once the handshake is accepted
    std::string remote;
    PeerCounters* counters = nullptr;  // set with `peer`
};

Status resolve(const std::string& addr, struct sockaddr_storage& out) {
    auto hp = parse_host_port(addr);
    if (!hp) return hp.status();
    std::memset(&out, 0, sizeof out);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
    if (uv_ip4_addr(hp->host.c_str(), hp->port, v4) == 0) return Status::ok();
    if (uv_ip6_addr(hp->host.c_str(), hp->port, v6) == 0) return Status::ok();
    // A host name: resolved synchronously, once per dial. Peer addresses are normally
    // numeric; a name costs one blocking lookup when a connection is (re)made.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int r = ::getaddrinfo(hp->host.c_str(), nullptr, &hints, &res);
    if (r != 0 || !res) return Status::unavailable(addr + ": " + ::gai_strerror(r));
    std::memcpy(&out, res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    if (out.ss_family == AF_INET)
        v4->sin_port = htons(hp->port);
    else
        v6->sin6_port = htons(hp->port);
    return Status::ok();
}

Transport::Transport(uv_loop_t* loop, TransportOptions opts,
                     std::function<void(raft::Message&&)> on_message,
                     std::function<void()> on_batch)
    : loop_(loop),
      opts_(std::move(opts)),
      on_message_(std::move(on_message)),
      on_batch_(std::move(on_batch)),
      rng_(std::random_device{}()) {}

Transport::~Transport() {
    stop();
}

Status Transport::start() {
    sockaddr_storage sa;
    if (Status st = resolve(opts_.listen, sa); !st)
        return Status::invalid_argument("listen " + opts_.listen + ": " + st.message());
    if (Status st = listener_.init(loop_); !st) return st;
    Status st = listener_.bind(reinterpret_cast<sockaddr*>(&sa));
    if (st) st = listener_.listen(128, [this](int status) { on_accept(status); });
    if (!st) {
        listener_.close();
        return Status(st.code(), "listen " + opts_.listen + ": " + st.message());
    }
    return Status::ok();
}

void Transport::stop_listening() {
    listener_.close();
}

void Transport::stop() {
    listener_.close();
    peers_.clear();
    inbound_.clear();
}

void Transport::set_peer(raft::NodeId id, const std::string& addr) {
    if (id == opts_.self || addr.empty()) return;
    auto& slot = peers_[id];
    if (slot && slot->addr == addr) return;
    if (slot) spdlog::info("peer {}: address changed from {} to {}", id, slot->addr, addr);
    slot = std::make_unique<Peer>();  // closes any old connection
    slot->id = id;
    slot->addr = addr;
    slot->backoff_ms = opts_.reconnect_min_ms;
    slot->counters = &counters_[id];
}

void Transport::remove_peer(raft::NodeId id) {
    if (peers_.erase(id)) spdlog::debug("peer {}: removed", id);
}

bool Transport::knows(raft::NodeId id) const {
    return peers_.count(id) != 0;
}

void Transport::connect_all() {
    for (auto& [id, p] : peers_)
        if (p->state == Peer::State::kIdle && !p->redial_pending) dial(*p);
}

void Transport::set_bootstrapping(bool b) {
    if (opts_.bootstrapping == b) return;
    opts_.bootstrapping = b;
    if (b) return;
    for (auto& [id, p] : peers_) {
        if (p->state == Peer::State::kIdle) continue;
        // Closing drops the connection's callbacks; nothing was queued for a node that had
        // no state to send from.
        p->tcp.close();
        p->dec.reset();
        p->tls.reset();
        p->queue.clear();
        p->inflight = 0;
        p->writing = false;
        p->state = Peer::State::kIdle;
        if (!p->redial_pending) dial(*p);
    }
}

std::vector<PeerView> Transport::peer_views() const {
    std::vector<PeerView> out;
    for (const auto& [id, c] : counters_) {
        PeerView v;
        v.id = id;
        v.counters = c;
        if (auto it = peers_.find(id); it != peers_.end()) {
            v.connected = it->second->state == Peer::State::kReady;
            v.queue_bytes = it->second->queue.size() + it->second->inflight;
        }
        out.push_back(v);
    }
    return out;
}

size_t Transport::connected_peers() const {
    size_t n = 0;
    for (const auto& [id, p] : peers_)
        n += p->state == Peer::State::kReady;
    return n;
}

void Transport::send(const raft::Message& m) {
    auto it = peers_.find(m.to);
    if (it == peers_.end()) {
        ++stats_.dropped;
        if (spdlog::should_log(spdlog::level::trace))
            spdlog::trace("drop {} (no address for node {})", raft::describe(m), m.to);
        return;
    }
    Peer& p = *it->second;
    if (p.state == Peer::State::kIdle) {
        if (!p.redial_pending) dial(p);
        if (p.state == Peer::State::kIdle) {  // dial failed at once, or waiting to redial
            ++stats_.dropped;
            ++p.counters->dropped_messages;
            return;
        }
    }
    // Estimate before encoding: the entries dominate; the fixed fields are a few dozen bytes.
    size_t estimate = 64 + m.data.size() + m.context.size();
    for (const auto& e : m.entries)
        estimate += e.data.size() + 21;
    const size_t queued = p.queue.size() + p.inflight;
    bool drop = queued + estimate > opts_.send_queue_bytes;
    // Snapshot chunks have their own flow control: one is queued only when the queue holds
    // less than a chunk, so a transfer never crowds out heartbeats and appends.
    if (m.type == raft::MessageType::kSnapshot && queued > opts_.snapshot_chunk_bytes) drop = true;
    if (drop) {
        ++stats_.dropped;
        ++p.counters->dropped_messages;
        if (p.dropped_since_log++ == 0)
            spdlog::debug("peer {}: send queue full ({} bytes), dropping messages", p.id, queued);
        return;
    }
    const size_t before = p.queue.size();
    encode_message(p.queue, m);
    ++stats_.sent;
    ++p.counters->sent_messages;
    p.counters->sent_bytes += p.queue.size() - before;
    // describe() copies every entry's payload: only when trace is on (it cost 3.5% of the
    // leader's CPU at 64 clients while discarded).
    if (spdlog::should_log(spdlog::level::trace)) spdlog::trace("send {}", raft::describe(m));
}

bool Transport::send_forward(raft::NodeId to, const Forward& f) {
    auto it = peers_.find(to);
    if (it == peers_.end()) return false;
    Peer& p = *it->second;
    if (p.state == Peer::State::kIdle && !p.redial_pending) dial(p);
    if (p.state == Peer::State::kIdle) return false;
    if (p.queue.size() + p.inflight + f.data.size() + 64 > opts_.send_queue_bytes) return false;
    encode_forward(p.queue, f);
    flush_peer(p);
    return true;
}

void Transport::flush() {
    for (auto& [id, p] : peers_)
        flush_peer(*p);
}

void Transport::flush_peer(Peer& p) {
    if (p.state != Peer::State::kReady || p.writing || p.queue.empty()) return;
    // Everything queued since the last write goes out as one gathered uv_write.
    auto out = std::make_shared<ipc::OutBuffer>(std::move(p.queue));
    p.queue.clear();
    std::shared_ptr<void> keep = out;
    std::vector<uv_buf_t> bufs;
    if (p.tls) {
        auto sealed = std::make_shared<std::string>(seal(*p.tls, *out));
        bufs.push_back(uv_buf_init(sealed->data(), static_cast<unsigned>(sealed->size())));
        keep = std::move(sealed);
    } else {
        bufs = bufs_of(*out);
    }
    p.inflight = out->size();
    p.writing = true;
    p.dropped_since_log = 0;
    ++stats_.writes;
    Peer* pp = &p;
    auto sent = p.tcp.write_now_or_queue(bufs, std::move(keep), [this, pp](int status) {
        pp->writing = false;
        pp->inflight = 0;
        if (status < 0) {
            peer_failed(*pp, std::string("write: ") + uv_strerror(status));
            return;
        }
        flush_peer(*pp);
    });
    if (!sent) {
        p.writing = false;
        p.inflight = 0;
        peer_failed(p, sent.status().message());
    } else if (*sent) {
        // Written at once: nothing can have been queued meanwhile.
        p.writing = false;
        p.inflight = 0;
    }
}

void Transport::dial(Peer& p) {
    sockaddr_storage sa;
    Status st = resolve(p.addr, sa);
    if (st) st = p.tcp.init(loop_);
    if (!st) {
        peer_failed(p, st.message());
        return;
    }
    p.state = Peer::State::kConnecting;
    Peer* pp = &p;
    st = p.tcp.connect(reinterpret_cast<sockaddr*>(&sa),
                       [this, pp](int status) { on_dial_done(*pp, status); });
    if (!st) peer_failed(p, st.message());
}

void Transport::on_dial_done(Peer& p, int status) {
    if (status < 0) {
        peer_failed(p, std::string("connect: ") + uv_strerror(status));
        return;
    }
    (void)p.tcp.nodelay(true);  // latency of small messages matters more than packet count
    (void)p.tcp.keepalive(true, 30);
    p.dec = std::make_unique<ipc::FrameDecoder>(ipc::FrameLimits{kHandshakeMaxFrame});
    Peer* pp = &p;
    Status st;
    if (opts_.tls) {
        // TLS first: our hello goes out once the acceptor's certificate names p.id.
        p.state = Peer::State::kTls;
        p.tls = std::make_unique<TlsSession>(opts_.tls, TlsSession::Role::kClient);
        p.tls->start();
        send_tls_output(p.tcp, *p.tls);
        st = p.tcp.read_start(
            [this](size_t) { return std::span<char>(tls_read_buf_.data(), tls_read_buf_.size()); },
            [this, pp](ssize_t nread, std::string_view data) {
                on_peer_tls_read(*pp, nread, data);
            });
        if (tls_read_buf_.empty()) tls_read_buf_.resize(kTlsReadBuf);
    } else {
        send_hello(p);
        st = p.tcp.read_start(
            [pp](size_t suggested) {
                auto [ptr, n] = pp->dec->prepare(std::min<size_t>(suggested, kHandshakeMaxFrame));
                return std::span<char>(ptr, n);
            },
            [this, pp](ssize_t nread, std::string_view) { on_peer_read(*pp, nread); });
    }
    if (!st) peer_failed(p, st.message());
}

void Transport::send_hello(Peer& p) {
    p.state = Peer::State::kHandshake;
    // The hello goes ahead of anything queued while connecting.
    auto out = std::make_shared<ipc::OutBuffer>();
    encode_hello(*out, PeerHello{kPeerProtocolVersion, opts_.cluster, opts_.self, p.id,
                                 opts_.advertise, opts_.incarnation, opts_.bootstrapping});
    Peer* pp = &p;
    Status st = write_out(p.tcp, p.tls.get(), std::move(out), [this, pp](int s) {
        if (s < 0) peer_failed(*pp, std::string("write: ") + uv_strerror(s));
    });
    if (!st) peer_failed(p, st.message());
}

Status Transport::write_out(ipc::uv::Tcp& tcp, TlsSession* tls, std::shared_ptr<ipc::OutBuffer> out,
                            std::function<void(int)> done) {
    if (!tls) {
        auto bufs = bufs_of(*out);
        return tcp.write(bufs, std::move(out), std::move(done));
    }
    auto sealed = std::make_shared<std::string>(seal(*tls, *out));
    uv_buf_t b = uv_buf_init(sealed->data(), static_cast<unsigned>(sealed->size()));
    return tcp.write(std::span<const uv_buf_t>(&b, 1), std::move(sealed), std::move(done));
}

std::string Transport::seal(TlsSession& tls, const ipc::OutBuffer& out) {
    std::string& stage = tls_stage_;
    stage.clear();
    for (std::string_view v : out.pieces()) {
        if (stage.size() + v.size() <= kTlsRecord) {
            stage.append(v);
            continue;
        }
        if (!stage.empty()) {
            tls.write(stage);
            stage.clear();
        }
        if (v.size() >= kTlsRecord)
            tls.write(v);
        else
            stage.append(v);
    }
    if (!stage.empty()) tls.write(stage);
    return tls.take_output();
}

void Transport::send_tls_output(ipc::uv::Tcp& tcp, TlsSession& tls) {
    if (!tls.has_output()) return;
    auto bytes = std::make_shared<std::string>(tls.take_output());
    uv_buf_t b = uv_buf_init(bytes->data(), static_cast<unsigned>(bytes->size()));
    // A failed write shows as a read error or EOF on the same connection.
    (void)tcp.write(std::span<const uv_buf_t>(&b, 1), std::move(bytes), nullptr);
}

void Transport::on_peer_tls_read(Peer& p, ssize_t nread, std::string_view data) {
    if (nread < 0) {
        if (p.state == Peer::State::kTls && nread == UV_EOF) {
            peer_failed(p,
                        "connection closed during the TLS handshake (does the peer run "
                        "without peer_tls_*?)");
            return;
        }
        on_peer_read(p, nread);
        return;
    }
    TlsSession& tls = *p.tls;
    const bool was_handshaking = p.state == Peer::State::kTls;
    tls.feed(data.substr(0, static_cast<size_t>(nread)));
    send_tls_output(p.tcp, tls);
    if (tls.state() == TlsSession::State::kFailed) {
        const std::string& err = tls.error();
        if (tls.refused_by_peer()) {
            peer_failed(p, "refused by " + p.addr + ": " + err, true);
        } else if (was_handshaking) {
            // We refused the acceptor's certificate.
            refuse_certificate(p, err);
        } else {
            peer_failed(p, err);
        }
        return;
    }
    if (tls.state() == TlsSession::State::kClosed) {
        peer_failed(p, "connection closed by peer");
        return;
    }
    if (p.state == Peer::State::kTls) {
        if (!tls.open()) return;
        const std::string want = node_uri(opts_.cluster, p.id);
        if (!names(tls, want)) {
            refuse_certificate(p, "certificate " + tls.peer_subject() + " names " +
                                      names_of(tls.peer_uris()) + ", not " + want);
            return;
        }
        send_hello(p);
        if (p.state != Peer::State::kHandshake) return;  // the write failed
    }
    for (;;) {
        auto [ptr, n] = p.dec->prepare(kHandshakeMaxFrame);
        size_t got = tls.read(ptr, n);
        if (got == 0) break;
        p.dec->commit(got);
    }
    if (tls.state() != TlsSession::State::kOpen) {
        peer_failed(p, tls.state() == TlsSession::State::kClosed ? "connection closed by peer"
                                                                 : tls.error());
        return;
    }
    peer_frames(p);
}

void Transport::refuse_certificate(Peer& p, const std::string& why) {
    ++stats_.refused;
    // Every redial meets the same certificate: one warning until the reason changes.
    if (why != p.last_refusal)
        spdlog::warn("peer {}: TLS certificate of {} refused: {}", p.id, p.addr, why);
    else
        spdlog::debug("peer {}: TLS certificate of {} refused again: {}", p.id, p.addr, why);
    p.last_refusal = why;
    peer_failed(p, why, true, true);
}

void Transport::on_peer_read(Peer& p, ssize_t nread) {
    if (nread < 0) {
        peer_failed(p, nread == UV_EOF ? "connection closed by peer" : uv_strerror(nread));
        return;
    }
    p.dec->commit(static_cast<size_t>(nread));
    peer_frames(p);
}

void Transport::peer_frames(Peer& p) {
    auto d = p.dec->next();
    if (d.kind == ipc::FrameDecoder::Kind::kNeedMore) return;
    if (p.state != Peer::State::kHandshake || d.kind != ipc::FrameDecoder::Kind::kFrame) {
        ++stats_.bad_frames;
        peer_failed(p, "unexpected data from peer: " + d.error);
        return;
    }
    auto w = decode_welcome(d.frame);
    if (!w) {
        ++stats_.bad_frames;
        peer_failed(p, w.status().message());
        return;
    }
    if (!w->ok) {
        const raft::NodeId id = p.id;
        peer_failed(p, "refused by " + p.addr + ": " + w->error, true);
        if (on_welcome_) on_welcome_(id, *w);  // last: it may stop the transport
        return;
    }
    if (w->cluster != opts_.cluster || w->node != p.id) {
        peer_failed(p,
                    "refusing " + p.addr + ": it is node " + std::to_string(w->node) +
                        " of cluster '" + w->cluster + "', expected node " + std::to_string(p.id) +
                        " of cluster '" + opts_.cluster + "'",
                    true);
        return;
    }
    // Before anything is sent: the owner may know the acceptor as a member that lost its data.
    HelloVerdict v = on_welcome_ ? on_welcome_(p.id, *w) : HelloVerdict{};
    if (!v.ok) {
        peer_failed(p, v.error, true);
        return;
    }
    p.state = Peer::State::kReady;
    ++p.counters->connects;
    p.backoff_ms = opts_.reconnect_min_ms;
    p.last_refusal.clear();
    p.dec->trim();
    spdlog::log(p.logged_down ? spdlog::level::info : spdlog::level::debug,
                "peer {}: connected to {}", p.id, p.addr);
    p.logged_down = false;
    flush_peer(p);
}

void Transport::peer_failed(Peer& p, const std::string& why, bool refused, bool logged) {
    if (logged) {
        // Counted and logged by the caller.
    } else if (refused) {
        ++stats_.refused;
        spdlog::error("peer {}: {}", p.id, why);
    } else if (p.state == Peer::State::kReady) {
        spdlog::info("peer {}: connection lost: {}", p.id, why);
    } else if (!p.logged_down) {
        spdlog::info("peer {}: cannot reach {}: {} (retrying)", p.id, p.addr, why);
        p.logged_down = true;
    } else {
        spdlog::debug("peer {}: dial {} failed: {}", p.id, p.addr, why);
    }
    const bool was_up = p.state != Peer::State::kIdle;
    p.tcp.close();
    p.dec.reset();
    p.tls.reset();
    p.queue.clear();  // stale by the time we reconnect; raft resends what still matters
    p.inflight = 0;
    p.writing = false;
    p.state = Peer::State::kIdle;
    // A refusal is a configuration error that will not fix itself soon: back off fully.
    if (refused) p.backoff_ms = opts_.reconnect_max_ms;
    schedule_redial(p);
    if (was_up && on_peer_down_) on_peer_down_(p.id);
}

void Transport::schedule_redial(Peer& p) {
    // Exponential backoff with jitter: wait a random time in [backoff/2, backoff], then double
    // the backoff, so that the nodes of a cluster restarted together do not redial in step.
    uint64_t b = std::max<uint64_t>(1, p.backoff_ms);
    uint64_t delay = b / 2 + rng_() % (b - b / 2 + 1);
    p.backoff_ms = std::min(opts_.reconnect_max_ms, b * 2);
    if (!p.redial.is_open() && !p.redial.init(loop_)) return;
    p.redial_pending = true;
    Peer* pp = &p;
    (void)p.redial.start(delay, 0, [this, pp] {
        pp->redial_pending = false;
        if (pp->state == Peer::State::kIdle) dial(*pp);
    });
}

void Transport::on_accept(int status) {
    if (status < 0) {
        spdlog::warn("peer listener: accept failed: {}", uv_strerror(status));
        return;
    }
    auto in = std::make_unique<Inbound>();
    in->serial = next_serial_++;
    if (!in->tcp.init(loop_) || !listener_.accept(in->tcp)) return;
    sockaddr_storage sa{};
    int len = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(in->tcp.tcp(), reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
        if (sa.ss_family == AF_INET) {
            auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
            uv_ip4_name(v4, host, sizeof host);
            in->remote = std::string(host) + ":" + std::to_string(ntohs(v4->sin_port));
        } else {
            auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
            uv_ip6_name(v6, host, sizeof host);
            in->remote = "[" + std::string(host) + "]:" + std::to_string(ntohs(v6->sin6_port));
        }
    }
    (void)in->tcp.nodelay(true);
    in->dec = std::make_unique<ipc::FrameDecoder>(ipc::FrameLimits{kHandshakeMaxFrame});
    Inbound* ip = in.get();
    Status st;
    if (opts_.tls) {
        in->tls = std::make_unique<TlsSession>(opts_.tls, TlsSession::Role::kServer);
        if (tls_read_buf_.empty()) tls_read_buf_.resize(kTlsReadBuf);
        st = in->tcp.read_start(
            [this](size_t) { return std::span<char>(tls_read_buf_.data(), tls_read_buf_.size()); },
            [this, ip](ssize_t nread, std::string_view data) {
                on_inbound_tls_read(*ip, nread, data);
            });
    } else {
        st = in->tcp.read_start(
            [ip](size_t suggested) {
                auto [ptr, n] = ip->dec->prepare(suggested);
                return std::span<char>(ptr, n);
            },
            [this, ip](ssize_t nread, std::string_view) { on_inbound_read(*ip, nread); });
    }
    if (!st) return;
    inbound_[in->serial] = std::move(in);
}

void Transport::refuse(Inbound& in, const std::string& why, uint64_t known_incarnation) {
    ++stats_.refused;
    spdlog::warn("peer connection from {} refused: {}", in.remote, why);
    auto out = std::make_shared<ipc::OutBuffer>();
    encode_welcome(*out, PeerWelcome{false, opts_.self, opts_.cluster, why, opts_.incarnation,
                                     known_incarnation, opts_.bootstrapping});
    // Close once the refusal is written, so the dialler can log why.
    uint64_t serial = in.serial;
    (void)in.tcp.read_stop();
    if (!write_out(in.tcp, in.tls.get(), std::move(out),
                   [this, serial](int) { close_inbound(serial); }))
        close_inbound(serial);
}

void Transport::close_inbound(uint64_t serial) {
    inbound_.erase(serial);
}

void Transport::on_inbound_read(Inbound& in, ssize_t nread) {
    if (nread < 0) {
        if (in.peer)
            spdlog::debug("peer {}: inbound connection closed: {}", in.peer,
                          nread == UV_EOF ? "EOF" : uv_strerror(nread));
        close_inbound(in.serial);  // destroys `in`
        return;
    }
    in.dec->commit(static_cast<size_t>(nread));
    inbound_frames(in);
}

void Transport::on_inbound_tls_read(Inbound& in, ssize_t nread, std::string_view data) {
    if (nread < 0) {
        on_inbound_read(in, nread);
        return;
    }
    TlsSession& tls = *in.tls;
    const bool was_open = tls.open();
    tls.feed(data.substr(0, static_cast<size_t>(nread)));
    if (tls.state() == TlsSession::State::kHandshake) {
        send_tls_output(in.tcp, tls);
        return;
    }
    if (tls.state() == TlsSession::State::kFailed && !was_open) {
        // Nothing of this connection was read: the alert goes out, then it closes.
        if (tls.refused_by_peer()) {
            // The dialler refused our certificate and says so in its own log.
            spdlog::info("peer connection from {} closed: {}", in.remote, tls.error());
        } else {
            ++stats_.refused;
            spdlog::warn("peer connection from {} refused: TLS: {}", in.remote, tls.error());
        }
        uint64_t serial = in.serial;
        (void)in.tcp.read_stop();
        auto bytes = std::make_shared<std::string>(tls.take_output());
        uv_buf_t b = uv_buf_init(bytes->data(), static_cast<unsigned>(bytes->size()));
        if (!in.tcp.write(std::span<const uv_buf_t>(&b, 1), std::move(bytes),
                          [this, serial](int) { close_inbound(serial); }))
            close_inbound(serial);
        return;
    }
    send_tls_output(in.tcp, tls);
    for (;;) {
        auto [ptr, n] = in.dec->prepare(64 * 1024);
        size_t got = tls.read(ptr, n);
        if (got == 0) break;
        in.dec->commit(got);
    }
    if (tls.state() != TlsSession::State::kOpen) {
        // Frames decrypted before the failure or close are still delivered; then it closes.
        if (tls.state() == TlsSession::State::kFailed)
            spdlog::debug("peer {}: inbound connection from {}: {}", in.peer, in.remote,
                          tls.error());
        const uint64_t serial = in.serial;
        inbound_frames(in);
        close_inbound(serial);
        return;
    }
    inbound_frames(in);
}

void Transport::inbound_frames(Inbound& in) {
    bool delivered = false;
    for (;;) {
        auto d = in.dec->next();
        if (d.kind == ipc::FrameDecoder::Kind::kNeedMore) break;
        if (d.kind != ipc::FrameDecoder::Kind::kFrame) {
            ++stats_.bad_frames;
            spdlog::warn("peer connection from {} (node {}): bad frame: {}", in.remote, in.peer,
                         d.error);
            close_inbound(in.serial);
            if (delivered) on_batch_();
            return;
        }
        if (!in.peer) {
            auto h = decode_hello(d.frame);
            if (!h) {
                refuse(in, h.status().message());
                return;
            }
            if (h->version != kPeerProtocolVersion) {
                refuse(in, "peer protocol version " + std::to_string(h->version) +
                               " is not supported (this node speaks " +
                               std::to_string(kPeerProtocolVersion) + ")");
                return;
            }
            if (h->cluster != opts_.cluster) {
                refuse(in, "node " + std::to_string(h->from) + " belongs to cluster '" +
                               h->cluster + "', this node to '" + opts_.cluster + "'");
                return;
            }
            if (h->to != opts_.self) {
                refuse(in, "node " + std::to_string(h->from) + " dialled node " +
                               std::to_string(h->to) + " but reached node " +
                               std::to_string(opts_.self));
                return;
            }
            if (h->from == raft::kNoNode || h->from == opts_.self) {
                refuse(in, "invalid sender id " + std::to_string(h->from));
                return;
            }
            // With TLS, the certificate must name the node the hello announces: a valid
            // certificate of node 2 cannot speak for node 3.
            if (in.tls && !names(*in.tls, node_uri(opts_.cluster, h->from))) {
                refuse(in, "TLS certificate " + in.tls->peer_subject() + " names " +
                               names_of(in.tls->peer_uris()) + ", not node " +
                               std::to_string(h->from) + " of cluster '" + opts_.cluster + "'");
                return;
            }
            if (on_hello_) {
                HelloVerdict v = on_hello_(*h);
                if (!v.ok) {
                    refuse(in, v.error, v.known_incarnation);
                    return;
                }
            }
            in.peer = h->from;
            in.counters = &counters_[in.peer];
            // One inbound connection per peer: a newer one replaces an older one (the peer
            // redialled after losing it).
            for (auto it = inbound_.begin(); it != inbound_.end();) {
                if (it->second.get() != &in && it->second->peer == in.peer)
                    it = inbound_.erase(it);
                else
                    ++it;
            }
            // A node we have no address for (one joining the cluster) tells us where it is.
            if (!knows(in.peer) && !h->addr.empty()) set_peer(in.peer, h->addr);
            auto out = std::make_shared<ipc::OutBuffer>();
            encode_welcome(*out, PeerWelcome{true, opts_.self, opts_.cluster, "", opts_.incarnation,
                                             0, opts_.bootstrapping});
            (void)write_out(in.tcp, in.tls.get(), std::move(out), nullptr);
            spdlog::debug("peer {}: accepted inbound connection from {}", in.peer, in.remote);
            // From now on frames are raft messages, up to max_frame. The decoder is swapped
            // only when nothing is buffered (the dialler waits for our welcome).
            if (in.dec->buffered() == 0)
                in.dec = std::make_unique<ipc::FrameDecoder>(ipc::FrameLimits{opts_.max_frame});
            continue;
        }
        if (is_forward(d.frame)) {
            auto f = decode_forward(d.frame);
            if (!f) {
                ++stats_.bad_frames;
                spdlog::warn("peer {}: bad forward frame: {}", in.peer, f.status().message());
                close_inbound(in.serial);
                if (delivered) on_batch_();
                return;
            }
            delivered = true;
            if (on_forward_) on_forward_(in.peer, std::move(f).value());
            continue;
        }
        auto m = decode_message(d.frame);
        if (!m) {
            ++stats_.bad_frames;
            spdlog::warn("peer {}: bad message: {}", in.peer, m.status().message());
            close_inbound(in.serial);
            if (delivered) on_batch_();
            return;
        }
        if (m->from != in.peer) {
            ++stats_.bad_frames;
            spdlog::warn("peer {}: message claims to be from node {}", in.peer, m->from);
            close_inbound(in.serial);
            if (delivered) on_batch_();
            return;
        }
        if (Status st = raft::validate_message(*m, opts_.self); !st) {
            spdlog::warn("peer {}: invalid message dropped: {}", in.peer, st.message());
            continue;
        }
        if (spdlog::should_log(spdlog::level::trace)) spdlog::trace("recv {}", raft::describe(*m));
        ++stats_.received;
        ++in.counters->received_messages;
        in.counters->received_bytes += d.frame.body().size() + ipc::kFrameHeaderSize;
        delivered = true;
        on_message_(std::move(m).value());
    }
    if (delivered) on_batch_();
}

}  // namespace raftd::daemon
