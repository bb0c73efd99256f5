// Transport: raft messages between nodes over TCP (docs/peer-protocol.md).
//
// Owns: the peer listener, one outbound connection per peer (this node's messages to it),
// the inbound connections peers dialled (their messages to us), the bounded send queue and
// the redial timer of each peer, and the handshake that refuses other clusters and
// unexpected node ids; with peer TLS on, one TlsSession per connection (daemon/tls.h) and
// the check that the peer's certificate names the node id its handshake announces.
// Never: block, grow a queue beyond send_queue_bytes (messages are dropped instead and raft
// sends again what is still needed), hand raft a message that failed validation, or make
// raft decisions: it only moves bytes. With TLS on, never let a plaintext byte through
// before the certificate is verified and names the announced node.
//
// Thread rules: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/peer_codec.h"
#include "daemon/tls.h"
#include "ipc/frame.h"
#include "ipc/uv.h"
#include "raft/message.h"
#include "raft/status.h"

namespace raftd::daemon {

struct TransportOptions {
    raft::NodeId self = raft::kNoNode;
    std::string cluster;
    std::string listen;     // host:port to bind
    std::string advertise;  // our address, sent in the handshake
    uint64_t send_queue_bytes = 8u << 20;
    uint64_t reconnect_min_ms = 100;
    uint64_t reconnect_max_ms = 5000;
    uint64_t snapshot_chunk_bytes = 1u << 20;
    uint32_t max_frame = 16u << 20;
    uint64_t incarnation = 0;    // our data dir's, sent in every handshake (0: none)
    bool bootstrapping = false;  // our store is empty and we wait for peers to bootstrap
    // Peer TLS material (null: plaintext peers, the default). Every connection then runs
    // mutual TLS 1.3 and the peer's certificate must name the node it announces.
    std::shared_ptr<TlsContext> tls;
};

// The owner's answer to an inbound handshake the transport itself found acceptable.
struct HelloVerdict {
    bool ok = true;
    std::string error;               // why, when !ok
    uint64_t known_incarnation = 0;  // sent with a refusal (PeerWelcome::known_incarnation)
};

struct TransportStats {
    uint64_t sent = 0;        // messages queued for sending
    uint64_t dropped = 0;     // messages dropped (queue full, peer unknown or not connected)
    uint64_t received = 0;    // messages handed to raft
    uint64_t writes = 0;      // uv_write calls (each carries every frame queued so far)
    uint64_t refused = 0;     // handshakes refused, either direction
    uint64_t bad_frames = 0;  // frames that failed to decode; their connection was closed
};

// One peer's traffic, kept for every node id the transport ever talked to (a handful), so
// the counters survive reconnects and address changes.
struct PeerCounters {
    uint64_t sent_messages = 0;      // raft messages queued for it
    uint64_t sent_bytes = 0;         // their encoded bytes
    uint64_t dropped_messages = 0;   // not connected, or its send queue full
    uint64_t received_messages = 0;  // raft messages from it handed to raft
    uint64_t received_bytes = 0;     // their frame bytes
    uint64_t connects = 0;           // handshakes completed on the connection we dial
};
// A peer as the metrics see it (daemon/metrics.h copies these on the loop thread).
struct PeerView {
    raft::NodeId id = raft::kNoNode;
    bool connected = false;    // our outbound connection completed its handshake
    uint64_t queue_bytes = 0;  // queued for it or being written
    PeerCounters counters;
};

class Transport {
  public:
    // `on_message`: a validated message for raft. `on_batch`: called after every read that
    // delivered messages, so the owner can collect one Ready for all of them.
    Transport(uv_loop_t* loop, TransportOptions opts,
              std::function<void(raft::Message&&)> on_message, std::function<void()> on_batch);
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // Binds and listens. Errors name the address ("listen 127.0.0.1:7001: address already in
    // use").
    Status start();
    // Closes the listener (no new inbound connections); existing connections stay.
    void stop_listening();
    // Closes everything. Queued messages are discarded.
    void stop();

    // The address to dial for `id`. A peer whose address changes is redialled.
    void set_peer(raft::NodeId id, const std::string& addr);
    // Drops a peer that left the configuration (its connections are closed).
    void remove_peer(raft::NodeId id);
    bool knows(raft::NodeId id) const;

    // Queues `m` for m.to. Nothing is written until flush(), so one Ready's messages to a
    // peer leave in one write.
    void send(const raft::Message& m);
    void flush();
    // Queues and flushes a forwarded proposal or its result for `to`. False when it was
    // dropped (no address, not connected, queue full): then it certainly never arrives.
    bool send_forward(raft::NodeId to, const Forward& f);
    // Forward frames received from an accepted peer.
    void set_forward_handler(std::function<void(raft::NodeId from, Forward&&)> h) {
        on_forward_ = std::move(h);
    }
    // Called when the connection we dialled to a peer fails (forwarded proposals on it may
    // be lost).
    void set_peer_down_handler(std::function<void(raft::NodeId)> h) {
        on_peer_down_ = std::move(h);
    }
    // Consulted for every inbound handshake that passed the transport's own checks
    // (version, cluster, ids): the owner accepts it or refuses it with a reason.
    void set_hello_handler(std::function<HelloVerdict(const PeerHello&)> h) {
        on_hello_ = std::move(h);
    }
    // Every answer to a handshake we sent that passed our checks, accepted or refused
    // (a refusal has already been logged and the peer's redial scheduled). May stop the
    // transport.
    void set_welcome_handler(std::function<HelloVerdict(raft::NodeId, const PeerWelcome&)> h) {
        on_welcome_ = std::move(h);
    }
    // Dials every known peer that is neither connected nor waiting to redial, instead of
    // waiting for the first message to it: peers learn our incarnation early.
    void connect_all();
    // Changes what our handshakes say about bootstrapping. Turning it off (we bootstrapped)
    // redials every peer, so each sees a handshake from a node with state and records it.
    void set_bootstrapping(bool b);
    // Our data dir's incarnation, for the handshakes; set before the first dial.
    void set_incarnation(uint64_t inc) { opts_.incarnation = inc; }
    // New TLS material (SIGHUP): connections made from now on use it; established ones keep
    // theirs. Only between two TLS contexts: TLS is not turned on or off at run time.
    void set_tls(std::shared_ptr<TlsContext> tls) { opts_.tls = std::move(tls); }

    const TransportStats& stats() const { return stats_; }
    // Peers with a completed handshake in our dialling direction.
    size_t connected_peers() const;
    // Every peer with an address, and every node id that sent us messages.
    std::vector<PeerView> peer_views() const;

  private:
    struct Peer;
    struct Inbound;

    void dial(Peer& p);
    void on_dial_done(Peer& p, int status);
    void on_peer_read(Peer& p, ssize_t nread);
    void on_peer_tls_read(Peer& p, ssize_t nread, std::string_view data);
    void peer_frames(Peer& p);
    void send_hello(Peer& p);
    // We refused the certificate of the node we dialled: warned once per reason.
    void refuse_certificate(Peer& p, const std::string& why);
    // `refused`: logged as an error (they refused us) unless `logged` (we refused them and
    // said so at warn already); either way the redial backs off fully.
    void peer_failed(Peer& p, const std::string& why, bool refused = false, bool logged = false);
    void schedule_redial(Peer& p);
    void flush_peer(Peer& p);

    void on_accept(int status);
    void on_inbound_read(Inbound& in, ssize_t nread);
    void on_inbound_tls_read(Inbound& in, ssize_t nread, std::string_view data);
    void inbound_frames(Inbound& in);
    // Writes `out` on a connection, sealed by `tls` when it has one.
    Status write_out(ipc::uv::Tcp& tcp, TlsSession* tls, std::shared_ptr<ipc::OutBuffer> out,
                     std::function<void(int)> done);
    // `out`'s frames as TLS records: small frames gathered into records of up to 16 KiB,
    // large payloads encrypted straight from their buffers.
    std::string seal(TlsSession& tls, const ipc::OutBuffer& out);
    // Sends what a session has to say by itself (handshake flights, alerts).
    void send_tls_output(ipc::uv::Tcp& tcp, TlsSession& tls);
    void close_inbound(uint64_t serial);
    void refuse(Inbound& in, const std::string& why, uint64_t known_incarnation = 0);

    uv_loop_t* loop_;
    TransportOptions opts_;
    std::function<void(raft::Message&&)> on_message_;
    std::function<void()> on_batch_;
    std::function<void(raft::NodeId, Forward&&)> on_forward_;
    std::function<void(raft::NodeId)> on_peer_down_;
    std::function<HelloVerdict(const PeerHello&)> on_hello_;
    std::function<HelloVerdict(raft::NodeId, const PeerWelcome&)> on_welcome_;
    ipc::uv::Tcp listener_;
    std::map<raft::NodeId, std::unique_ptr<Peer>> peers_;
    std::map<uint64_t, std::unique_ptr<Inbound>> inbound_;
    uint64_t next_serial_ = 1;
    std::mt19937_64 rng_;
    std::vector<char> tls_read_buf_;  // ciphertext lands here, then goes into the session
    std::string tls_stage_;           // small frames gathered into one record
    TransportStats stats_;
    // Never erased: Peer and Inbound point into it (map nodes do not move).
    std::map<raft::NodeId, PeerCounters> counters_;
};

// "host:port" (numeric IPv4/IPv6, or a name resolved once with getaddrinfo) to a sockaddr.
Status resolve(const std::string& addr, struct sockaddr_storage& out);

}  // namespace raftd::daemon
