// NodeHost: the running daemon. One libuv loop thread owns the raft::Node, the peer
// transport, the client server and the timers. Batches are made durable on a storage thread
// while the loop goes on, or on the loop thread itself when the storage thread is idle and no
// client replies wait: the store has two writers, one at a time (daemon/README.md,
// "Threads"). The Ready pipeline itself (what leaves when, what is written where) is
// ReadyPipeline; NodeHost is its adapter to libuv, the transport and the storage thread
// (the PipelineActions it implements).
//
// Owns: the data dir lock, the durable store, the Node, the ReadyPipeline, the storage
// thread, the transport, the tick/watchdog timers, the signal handlers and the sd_notify
// state.
// Never: decide an ordering rule of the pipeline (ready_pipeline.h keeps them); retry a
// failed WAL write (the page cache may have dropped the data: the daemon stops).
//
// Thread rules: every method on the loop thread except what StorageWorker documents.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/datadir.h"
#include "daemon/durable.h"
#include "daemon/notify.h"
#include "daemon/ready_pipeline.h"
#include "daemon/transport.h"
#include "ipc/uv.h"
#include "raft/node.h"

namespace raftd::daemon {

class StorageWorker;

// What the client side (ipc::Server's backend) learns from the pipeline.
struct HostEvents {
    // Committed entries, in order, each already durable locally.
    std::function<void(const std::vector<raft::Entry>&)> committed;
    // A snapshot from the leader was installed: `committed` goes on after its index, and
    // the entries it covers are never delivered. Called before that Ready's `committed`.
    std::function<void(const raft::SnapshotMeta&)> snapshot_installed;
    std::function<void(const std::vector<raft::ReadState>&)> read_states;
    // Role, leader or term changed.
    std::function<void()> role_changed;
    // After advance(): committed configuration changes are now in effect.
    std::function<void()> applied;
    // The node is stopping: fail what waits on raft.
    std::function<void()> stopping;
    // Whether replies or events wait to be written, and writing them now.
    std::function<bool()> clients_have_output;
    std::function<void()> flush_clients;
};

class NodeHost final : private PipelineActions {
  public:
    // Opens the data dir and the store and restores the Node. An empty store (unless
    // cfg.join) bootstraps a new cluster: at once when initial_cluster names no other member,
    // else once every other member answered a handshake without knowing this node by another
    // data directory (first_boot.cpp). Errors are one line for the operator.
    static Result<std::unique_ptr<NodeHost>> open(const Config& cfg);
    ~NodeHost();
    NodeHost(const NodeHost&) = delete;
    NodeHost& operator=(const NodeHost&) = delete;

    // Binds the peer listener and starts the timers, signals and storage thread. After this,
    // start the client server on loop(), then call run().
    Status start();
    // Runs until a stop signal (or a fatal storage error). Returns the process exit status.
    int run();
    // Begins a graceful stop (what SIGTERM does).
    void shutdown(const std::string& why);

    uv_loop_t* loop() { return loop_.get(); }
    ipc::uv::Loop& loop_owner() { return loop_; }
    raft::Node& node() { return *node_; }
    const Config& config() const { return cfg_; }
    const DurableStore& store() const { return *store_; }
    HostEvents& events() { return events_; }
    // Called after the client side or a peer fed raft (proposals, reads, messages): the next
    // Ready is collected once per loop iteration, after every callback of that iteration ran,
    // so a burst of proposals or peer messages becomes one batch.
    void kick();
    bool stopping() const { return stopping_; }
    // The highest committed index handed to `events().committed`.
    raft::Index delivered() const { return pipeline_->delivered(); }
    // Called once the client server listens: READY=1 goes to systemd.
    void ready_to_serve();

    const PipelineStats& stats() const { return pipeline_->stats(); }
    // Runs `work` on the storage thread after everything submitted before it; `done` on the
    // loop thread. For the store's writes other than Ready batches (application snapshots).
    void run_on_storage_thread(std::function<Status()> work, std::function<void(Status)> done);
    DurableStore& store_for_storage_thread() { return *store_; }
    Transport& transport() { return *transport_; }
    // "leader term 3" — for STATUS= and logs.
    std::string status_line() const;
    // An empty store waiting for its peers before it bootstraps (first_boot.cpp).
    bool awaiting_peers() const { return awaiting_peers_; }

  private:
    NodeHost(Config cfg);
    // The peer TLS files of the config (none: plaintext peers).
    TlsFiles tls_files() const;
    // SIGHUP: re-reads them for new connections; on an error keeps the previous material.
    void reload_tls();
    // PipelineActions, on the loop thread.
    void send(const std::vector<raft::Message>& msgs) override;
    bool storage_idle() override;
    Status persist_inline(PersistJob& job) override;
    void persist_on_worker(PersistJob job) override;
    bool clients_have_output() override;
    void flush_clients() override;
    void deliver(const std::vector<raft::Entry>& committed) override;
    void read_states(const std::vector<raft::ReadState>& rs) override;
    void snapshot_installed(const raft::SnapshotMeta& meta) override;
    void role_changed(const raft::SoftState& ss) override;
    void term_changed(raft::Term term) override;
    void advanced(const Advanced& a) override;
    void fatal(const std::string& why) override;
    void drained() override;

    Status persist_counted(PersistJob& job);
    void sync_peers();
    void finish_shutdown();

    // ---- first boot and incarnations (first_boot.cpp) ----
    // Creates node_ from the store (at open, and again once the bootstrap entry is written).
    Status create_node();
    // In start(): dials the other initial members and logs what the node waits for.
    Status start_awaiting_peers();
    HelloVerdict on_hello(const PeerHello& h);
    HelloVerdict on_welcome(raft::NodeId peer, const PeerWelcome& w);
    // The rest of the line a node that lost its data stops with, after "data dir ".
    std::string lost_data(raft::NodeId peer, uint64_t known, const char* must_not) const;
    // Every other initial member answered: write the bootstrap entry, then restore the node.
    void bootstrap_now();
    void log_awaiting();

    Config cfg_;
    ipc::uv::Loop loop_;
    std::unique_ptr<DataDir> dir_;
    std::unique_ptr<DurableStore> store_;
    std::unique_ptr<raft::Node> node_;
    std::unique_ptr<Transport> transport_;
    std::unique_ptr<StorageWorker> worker_;
    Notifier notifier_;
    ipc::uv::Timer tick_;
    ipc::uv::Check kick_check_;
    bool kicked_ = false;
    ipc::uv::Timer watchdog_;
    ipc::uv::Signal sigterm_, sigint_, sighup_;
    HostEvents events_;
    std::unique_ptr<ReadyPipeline> pipeline_;
    bool stopping_ = false;
    bool stopped_ = false;
    int exit_code_ = 0;
    raft::ConfState known_conf_;
    raft::SoftState soft_;
    // First boot: the store is empty and the node waits for every other member of
    // initial_cluster to answer before it writes the bootstrap entry. Meanwhile node_ is an
    // empty Node (no configuration: it cannot campaign) and peers' raft messages are dropped
    // (it cannot vote).
    raft::Config raft_cfg_;
    bool awaiting_peers_ = false;
    bool bootstrap_writing_ = false;
    std::vector<raft::Member> bootstrap_members_;
    std::set<raft::NodeId> heard_;
    ipc::uv::Timer await_log_;
    // Started empty with `join`: until the leader's entries or snapshot are durable here, the
    // handshakes say the store is empty, so a peer that knew this id with a log refuses it
    // (and this node stops) and a peer dialling it sends it nothing (first_boot.cpp).
    bool joining_empty_ = false;
    // Each peer's data dir incarnation as recorded in the store (and being recorded).
    std::map<uint64_t, uint64_t> peer_incarnations_;
};

// Entry point used by main(): runs raftd with `cfg` until it stops; returns the exit status.
// Startup errors are printed as one line on stderr.
int run_daemon(const Config& cfg);

}  // namespace raftd::daemon
