// NodeHost: the running daemon. One libuv loop thread owns the raft::Node, the peer
// transport, the client server and the timers; one storage thread makes Ready batches durable.
//
// Owns: the data dir lock, the durable store, the Node, the storage thread, the transport,
// the tick/watchdog timers, the signal handlers and the sd_notify state.
// Never: let a follower's acknowledgement, a vote or a candidate's request leave before the
// batch it depends on is durable; deliver a committed entry that is not durable locally;
// retry a failed WAL write (the page cache may have dropped the data: the daemon stops).
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
#include "daemon/transport.h"
#include "ipc/uv.h"
#include "raft/node.h"

namespace raftd::daemon {

class StorageWorker;

// What the client side (ipc::Server's backend) learns from the pipeline.
struct HostEvents {
    // Committed entries, in order, each already durable locally.
    std::function<void(const std::vector<raft::Entry>&)> committed;
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

struct PipelineStats {
    uint64_t readies = 0;
    uint64_t persist_jobs = 0;  // batches handed to the storage thread
    uint64_t persisted_entries = 0;
    uint64_t committed_entries = 0;
    uint64_t lazy_commit_writes = 0;  // commit-only hard states not waited for
    uint64_t inline_jobs = 0;         // batches persisted on the loop thread
    uint64_t leader_async_jobs = 0;   // leader batches written while replication went on
};

class NodeHost {
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
    raft::Index delivered() const { return delivered_; }
    // Called once the client server listens: READY=1 goes to systemd.
    void ready_to_serve();

    const PipelineStats& stats() const { return stats_; }
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
    void process();
    void submit_persist(PersistJob job);
    // Persists `job` on the loop thread when configured and the storage thread is idle
    // (nothing of the store can run concurrently then); false: submit it instead.
    bool persist_inline(PersistJob& job);
    void flush_commit_index();
    void on_persisted(Status st);
    void send_messages(raft::Ready& rd);
    void deliver(raft::Ready& rd);
    void flush_clients();
    // Steps 3-5 of the contract for pending_; with entries_durable false the Ready's entries
    // are still being written (a leader's, see queue_leader_entries) and the last of them is
    // returned for reporting later.
    raft::EntryId finish_ready(bool entries_durable = true);
    void attach_hard_state(PersistJob& job);
    void queue_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last);
    void submit_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last);
    void flush_leader_entries();
    // The one place a batch goes to the storage thread; `done` runs on the loop.
    void persist_on_worker(PersistJob job, std::function<void(Status)> done);
    void on_leader_entries_persisted(Status st, raft::EntryId last);
    void sync_peers();
    void on_role_change(const raft::SoftState& ss);
    void finish_shutdown();
    void fatal(const std::string& why);

    // ---- first boot and incarnations (first_boot.cpp) ----
    // Creates node_ from the store (at open, and again once the bootstrap entry is written).
    Status create_node();
    // In start(): dials the other initial members and logs what the node waits for.
    Status start_awaiting_peers();
    HelloVerdict on_hello(const PeerHello& h);
    void on_welcome(raft::NodeId peer, const PeerWelcome& w);
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

    // The hard state last handed to the storage thread, and a newer one that differs from it
    // only in its commit index: that one is written with the first batch after a tick (or
    // on an idle tick) instead of costing a storage round trip before committed entries may
    // be delivered and a LevelDB write in every batch.
    raft::HardState written_hs_;
    std::optional<raft::HardState> lazy_hs_;
    bool commit_due_ = true;  // a tick passed since the hard state was last written
    // The Ready whose persist half is on the storage thread; the rest waits here.
    std::optional<raft::Ready> pending_;
    bool persisting_ = false;
    // Leader batches on the storage thread, and the entries handed out meanwhile that form
    // the next one (with the last of them, to report to raft when durable).
    int async_jobs_ = 0;
    std::vector<raft::Entry> async_next_;
    raft::EntryId async_next_last_;
    bool in_process_ = false;
    bool stopping_ = false;
    bool stopped_ = false;
    int exit_code_ = 0;
    raft::Index delivered_ = 0;
    bool conf_may_change_ = false;  // the Ready being finished delivered a config entry
    bool delivered_early_ = false;  // process() delivered the pending Ready's commits
    raft::ConfState known_conf_;
    raft::SoftState soft_;
    raft::Term logged_term_ = 0;
    PipelineStats stats_;

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
    // Each peer's data dir incarnation as recorded in the store (and being recorded).
    std::map<uint64_t, uint64_t> peer_incarnations_;
};

// Entry point used by main(): runs raftd with `cfg` until it stops; returns the exit status.
// Startup errors are printed as one line on stderr.
int run_daemon(const Config& cfg);

}  // namespace raftd::daemon
