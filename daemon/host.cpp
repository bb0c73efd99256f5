// The running daemon: see host.h. The Ready pipeline's rules live in ready_pipeline.cpp;
// this file adapts it to libuv, the transport and the storage thread.
#include "daemon/host.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <random>

#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/storage_worker.h"
#include "raft/confchange.h"

namespace raftd::daemon {

namespace {
// Bytes of committed entries handed out per Ready, so one huge backlog (a restarted
// follower) does not stall the loop in a single iteration.
constexpr uint64_t kCommittedBytesPerReady = 4u << 20;

std::string describe_members(const std::vector<raft::Member>& ms) {
    std::string s;
    for (const auto& m : ms)
        s += (s.empty() ? "" : ",") + std::to_string(m.id) + "=" + m.addr;
    return s;
}
}  // namespace

NodeHost::NodeHost(Config cfg) : cfg_(std::move(cfg)), notifier_(Notifier::from_env()) {}

NodeHost::~NodeHost() {
    if (worker_) worker_->stop();
    transport_.reset();
    tick_.close();
    kick_check_.close();
    watchdog_.close();
    sigterm_.close();
    sigint_.close();
    sighup_.close();
}

TlsFiles NodeHost::tls_files() const {
    return TlsFiles{cfg_.peer_tls_cert, cfg_.peer_tls_key, cfg_.peer_tls_ca, cfg_.peer_tls_crl};
}

void NodeHost::reload_tls() {
    const TlsFiles files = tls_files();
    if (!files.enabled() || !transport_) return;
    // Established links keep their sessions: a reload never drops a healthy connection.
    auto tls = TlsContext::load(files, node_uri(cfg_.cluster, cfg_.node_id));
    if (!tls) {
        spdlog::error(
            "SIGHUP: peer TLS not reloaded, new connections keep the previous "
            "certificates: {}",
            tls.status().message());
        return;
    }
    spdlog::info("SIGHUP: peer TLS reloaded: {}", tls.value()->summary());
    transport_->set_tls(std::move(tls).value());
}

Result<std::unique_ptr<NodeHost>> NodeHost::open(const Config& cfg) {
    std::unique_ptr<NodeHost> h(new NodeHost(cfg));
    if (!h->loop_.init_status()) return h->loop_.init_status();
    // The peer port first: when it is taken, nothing on disk has been touched yet.
    TransportOptions to;
    to.self = cfg.node_id;
    to.cluster = cfg.cluster;
    to.listen = cfg.listen;
    to.advertise = cfg.advertise_addr();
    to.send_queue_bytes = cfg.send_queue_bytes;
    to.reconnect_min_ms = cfg.reconnect_min_ms;
    to.reconnect_max_ms = cfg.reconnect_max_ms;
    to.snapshot_chunk_bytes = cfg.snapshot_chunk_bytes;
    to.max_frame = static_cast<uint32_t>(cfg.max_frame);
    if (const TlsFiles files = h->tls_files(); files.enabled()) {
        auto tls = TlsContext::load(files, node_uri(cfg.cluster, cfg.node_id));
        if (!tls) return tls.status();
        to.tls = std::move(tls).value();
        spdlog::info("peer TLS on: {}", to.tls->summary());
    }
    h->transport_ = std::make_unique<Transport>(
        h->loop_.get(), to,
        [hp = h.get()](raft::Message&& m) {
            // An empty node waiting to bootstrap must not vote (first_boot.cpp).
            if (hp->awaiting_peers_) return;
            if (m.type == raft::MessageType::kSnapshot && m.done)
                metrics().snapshots_received.inc();
            if (Status st = hp->node_->step(m); !st)
                spdlog::debug("raft refused {}: {}", raft::describe(m), st.message());
        },
        [hp = h.get()] { hp->kick(); });
    h->transport_->set_hello_handler(
        [hp = h.get()](const PeerHello& m) { return hp->on_hello(m); });
    h->transport_->set_welcome_handler(
        [hp = h.get()](raft::NodeId id, const PeerWelcome& w) { return hp->on_welcome(id, w); });
    if (Status st = h->transport_->start(); !st) return st;
    auto dir = DataDir::open(cfg.data_dir, cfg.cluster, cfg.node_id);
    if (!dir) return dir.status();
    h->dir_ = std::move(dir).value();

    StoreOptions so;
    so.segment_bytes = cfg.wal_segment_size;
    so.cache_bytes = cfg.wal_cache_bytes;
    so.keep_entries = cfg.log_keep_entries;
    so.cluster = cfg.cluster;
    so.node_id = cfg.node_id;
    auto store = open_store(h->dir_->path(), so);
    if (!store) return store.status();  // names the directory itself
    h->store_ = std::move(store).value();
    h->peer_incarnations_ = h->store_->peer_incarnations();
    h->transport_->set_incarnation(h->store_->incarnation());

    if (h->store_->empty()) {
        auto members = cfg.bootstrap_members();
        const bool alone = std::all_of(members.begin(), members.end(),
                                       [&](const raft::Member& m) { return m.id == cfg.node_id; });
        if (cfg.join) {
            spdlog::info("empty data dir and join set: waiting to be added to a running cluster");
            // A wiped member started with join looks just like a new one: only peers that
            // recorded its old incarnation can tell, so it asks those it knows of at once.
            h->joining_empty_ = true;
            h->transport_->set_bootstrapping(true);
            for (const auto& m : members)
                h->transport_->set_peer(m.id, m.addr);
        } else if (!alone) {
            // Not yet: a member that lost its data dir looks just like a new one, and only
            // its peers can tell (first_boot.cpp, docs/operations.md).
            h->awaiting_peers_ = true;
            h->bootstrap_members_ = std::move(members);
            h->transport_->set_bootstrapping(true);
        } else {
            // A new cluster: every initial member writes the same first entry and hard state,
            // so they agree on index 1 without talking (raft/node.h, bootstrap_entry).
            PersistJob job;
            job.entries.push_back(raft::bootstrap_entry(members));
            job.hard_state = raft::HardState{1, raft::kNoNode, 1};
            if (Status st = h->store_->persist(job); !st) return st;
            spdlog::info("bootstrapped cluster '{}' with members {}", cfg.cluster,
                         describe_members(members));
        }
    } else if (!cfg.initial_cluster.empty() || cfg.join) {
        spdlog::debug("data dir holds state: initial_cluster and join are ignored");
    }

    raft::Config rc;
    rc.id = cfg.node_id;
    rc.election_tick = static_cast<int>(cfg.election_ticks);
    rc.heartbeat_tick = static_cast<int>(cfg.heartbeat_ticks);
    rc.pre_vote = cfg.pre_vote;
    rc.check_quorum = cfg.check_quorum;
    rc.lease_read = cfg.lease_read;
    rc.max_inflight_msgs = cfg.max_inflight_msgs;
    rc.max_inflight_bytes = cfg.max_inflight_bytes;
    rc.max_size_per_msg = cfg.max_append_bytes;
    rc.max_uncommitted_bytes = cfg.max_uncommitted_bytes;
    rc.max_committed_bytes_per_ready = kCommittedBytesPerReady;
    rc.max_snapshot_chunk_bytes = cfg.snapshot_chunk_bytes;
    // raftd keeps no application state: everything committed before the restart was already
    // delivered (subscribers read it back from the log), so raft resumes applying after it.
    rc.applied = h->store_->storage().initial_state().hard.commit;
    rc.seed = std::random_device{}() ^ (static_cast<uint64_t>(cfg.node_id) << 32);
    h->raft_cfg_ = rc;
    if (Status st = h->create_node(); !st) return st;
    auto st = h->node_->status();
    spdlog::info("recovered: term {} vote {} commit {} log [{}, {}] members {}", st.hard.term,
                 st.hard.vote, st.hard.commit, st.first_index, st.last_index,
                 raft::describe(st.conf));
    return h;
}

Status NodeHost::start() {
    sync_peers();

    worker_ = std::make_unique<StorageWorker>();
    if (Status st = worker_->start(loop_.get()); !st) return st;
    if (awaiting_peers_)
        if (Status st = start_awaiting_peers(); !st) return st;
    // Every peer at once rather than on the first message to it: each learns this data
    // dir's incarnation while it runs (first_boot.cpp).
    transport_->connect_all();

    Status st = tick_.init(loop_.get());
    if (st) st = tick_.start(cfg_.tick_ms, cfg_.tick_ms, [this] { pipeline_->tick(); });
    if (st) st = kick_check_.init(loop_.get());
    if (st)
        st = kick_check_.start([this] {
            while (kicked_) {
                kicked_ = false;
                pipeline_->process();
            }
        });
    if (st) st = sigterm_.init(loop_.get());
    if (st) st = sigterm_.start(SIGTERM, [this](int) { shutdown("SIGTERM"); });
    if (st) st = sigint_.init(loop_.get());
    if (st) st = sigint_.start(SIGINT, [this](int) { shutdown("SIGINT"); });
    if (st) st = sighup_.init(loop_.get());
    if (st)
        st = sighup_.start(SIGHUP, [this](int) {
            if (Status r = reopen_logs(); !r)
                spdlog::error("SIGHUP: {}", r.message());
            else
                spdlog::info("SIGHUP: log file reopened");
            reload_tls();
        });
    if (!st) return st;
    if (auto period = notifier_.watchdog_period()) {
        if (st = watchdog_.init(loop_.get()); !st) return st;
        uint64_t ms = std::max<int64_t>(1, period->count());
        if (st = watchdog_.start(0, ms,
                                 [this] {
                                     if (Status r = notifier_.watchdog(); !r)
                                         spdlog::warn("sd_notify WATCHDOG: {}", r.message());
                                 });
            !st)
            return st;
    }
    soft_ = {node_->leader(), node_->role()};
    // A single-voter cluster need not wait an election timeout to lead.
    const auto& conf = node_->conf_state();
    if (conf.voters.size() == 1 && conf.voters[0] == cfg_.node_id && conf.voters_outgoing.empty())
        (void)node_->campaign();
    pipeline_->process();
    return Status::ok();
}

void NodeHost::ready_to_serve() {
    spdlog::info("ready: peers on {}, clients on {}", cfg_.listen, cfg_.socket);
    if (Status st = notifier_.ready(status_line()); !st)
        spdlog::warn("sd_notify READY: {}", st.message());
}

int NodeHost::run() {
    loop_.run();
    return exit_code_;
}

std::string NodeHost::status_line() const {
    if (awaiting_peers_) return "waiting for peers to bootstrap";
    std::string s(raft::role_name(node_->role()));
    if (node_->role() == raft::Role::kFollower) {
        s += node_->leader() ? " of " + std::to_string(node_->leader()) : " (no leader)";
    }
    return s + ", term " + std::to_string(node_->term());
}

// ---- the Ready pipeline's actions ----------------------------------------------------------

void NodeHost::kick() {
    // Before start() (no check handle yet) or after stop there is no later iteration to wait for.
    if (kick_check_.is_open())
        kicked_ = true;
    else
        pipeline_->process();
}

void NodeHost::send(const std::vector<raft::Message>& msgs) {
    for (const auto& m : msgs) {
        if (m.type == raft::MessageType::kSnapshot && m.offset == 0) metrics().snapshots_sent.inc();
        transport_->send(m);
    }
    transport_->flush();
}

bool NodeHost::storage_idle() {
    return !worker_ || worker_->outstanding() == 0;
}

// Either thread (the loop inline, or the storage thread): counts what was made durable and
// brackets the write, so /health sees a write that does not return.
Status NodeHost::persist_counted(PersistJob& job) {
    uint64_t bytes = 0;
    for (const auto& e : job.entries)
        bytes += e.data.size();
    const uint64_t entries = job.entries.size();
    Metrics& m = metrics();
    m.storage_write_began();
    Status st = store_->persist(job);
    m.storage_write_ended();
    if (st) {
        m.written_entries.inc(entries);
        m.written_bytes.inc(bytes);
    }
    return st;
}

Status NodeHost::persist_inline(PersistJob& job) {
    return persist_counted(job);
}

void NodeHost::persist_on_worker(PersistJob job) {
    auto shared = std::make_shared<PersistJob>(std::move(job));
    worker_->submit([this, shared] { return persist_counted(*shared); },
                    [this](Status st) { pipeline_->persisted(std::move(st)); });
}

bool NodeHost::clients_have_output() {
    return events_.clients_have_output && events_.clients_have_output();
}

void NodeHost::flush_clients() {
    if (events_.flush_clients) events_.flush_clients();
}

void NodeHost::deliver(const std::vector<raft::Entry>& committed) {
    if (events_.committed) events_.committed(committed);
}

void NodeHost::read_states(const std::vector<raft::ReadState>& rs) {
    if (events_.read_states) events_.read_states(rs);
}

void NodeHost::snapshot_installed(const raft::SnapshotMeta& meta) {
    // The store logged the install; subscribers read what follows it from the store.
    spdlog::debug("snapshot at index {} term {} installed", meta.index, meta.term);
    metrics().snapshots_installed.inc();
    // Before the deliveries after it: the proposals it covers are decided by it.
    if (events_.snapshot_installed) events_.snapshot_installed(meta);
}

void NodeHost::term_changed(raft::Term term) {
    spdlog::debug("term {}", term);
    // Only an election moves a candidate's term, or a leader's (won in the same Ready).
    const raft::Role r = node_->role();
    if (r == raft::Role::kCandidate || r == raft::Role::kLeader) metrics().elections_started.inc();
    if (events_.role_changed) events_.role_changed();
}

void NodeHost::advanced(const Advanced& a) {
    if (joining_empty_ && node_->status().last_index > 0) {
        // The leader's entries or snapshot are durable: peers may record this incarnation.
        joining_empty_ = false;
        transport_->set_bootstrapping(false);
        spdlog::debug("joined: the log now holds the leader's entries");
    }
    if (!a.conf_may_change) return;
    sync_peers();
    if (events_.applied) events_.applied();
}

void NodeHost::sync_peers() {
    const raft::ConfState& conf = node_->conf_state();
    if (conf == known_conf_) return;
    if (!known_conf_.voters.empty() || !known_conf_.learners.empty())
        spdlog::info("membership: {}", raft::describe(conf));
    for (const auto& m : conf.addrs)
        transport_->set_peer(m.id, m.addr);
    for (raft::NodeId id : raft::all_members(known_conf_))
        if (!raft::is_member(conf, id)) transport_->remove_peer(id);
    known_conf_ = conf;
}

void NodeHost::role_changed(const raft::SoftState& ss) {
    const raft::Term term = node_->term();
    // As etcd's leader_changes_seen_total: each time a leader is known that was not just before.
    if (ss.leader != raft::kNoNode && ss.leader != soft_.leader) metrics().leader_changes.inc();
    if (ss.role == raft::Role::kLeader && soft_.role != raft::Role::kLeader) {
        metrics().elections_won.inc();
        spdlog::info("became leader at term {}", term);
    } else if (ss.role == raft::Role::kFollower && ss.leader != soft_.leader) {
        if (ss.leader)
            spdlog::info("following leader {} at term {}", ss.leader, term);
        else
            spdlog::info("no leader at term {}", term);
    } else if (ss.role != soft_.role) {
        spdlog::debug("{} at term {}", raft::role_name(ss.role), term);
    }
    soft_ = ss;
    if (Status st = notifier_.status(status_line()); !st)
        spdlog::debug("sd_notify STATUS: {}", st.message());
    if (events_.role_changed) events_.role_changed();
}

// ---- stopping ---------------------------------------------------------------------------

void NodeHost::shutdown(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    spdlog::info("{}: stopping", why);
    (void)notifier_.stopping();
    if (events_.stopping) events_.stopping();
    if (transport_) transport_->stop_listening();
    tick_.close();
    // The jobs on the storage thread, if any, are finished first; drained() follows.
    pipeline_->stop();
}

void NodeHost::drained() {
    finish_shutdown();
}

void NodeHost::run_on_storage_thread(std::function<Status()> work,
                                     std::function<void(Status)> done) {
    worker_->submit(std::move(work), std::move(done));
}

void NodeHost::fatal(const std::string& why) {
    spdlog::critical("{}; stopping", why);
    exit_code_ = 1;
    stopping_ = true;
    if (events_.stopping) events_.stopping();
    finish_shutdown();
}

void NodeHost::finish_shutdown() {
    if (stopped_) return;
    stopped_ = true;
    if (transport_) transport_->stop();
    if (worker_) worker_->stop();
    if (auto hs = pipeline_->take_unwritten_hard_state(); hs && exit_code_ == 0) {
        // The storage thread is gone: this thread is the only writer now.
        PersistJob job;
        job.hard_state = hs;
        if (Status st = store_->persist(job); !st)
            spdlog::error("writing the commit index: {}", st.message());
    }
    if (Status st = store_->close(); !st) {
        spdlog::error("closing the store: {}", st.message());
        exit_code_ = 1;
    }
    tick_.close();
    kick_check_.close();
    watchdog_.close();
    await_log_.close();
    sigterm_.close();
    sigint_.close();
    sighup_.close();
    spdlog::info(
        "stopped ({} Readies, {} storage batches ({} on the loop, {} leader batches alongside "
        "replication) for {} entries, {} peer writes for {} messages, {} dropped)",
        stats().readies, stats().persist_jobs, stats().inline_jobs, stats().leader_async_jobs,
        stats().persisted_entries, transport_ ? transport_->stats().writes : 0,
        transport_ ? transport_->stats().sent : 0, transport_ ? transport_->stats().dropped : 0);
    // Handles owned by the client side are closed by their owners; stop the loop now so
    // run() returns even if one of them lingers.
    loop_.stop();
}

}  // namespace raftd::daemon
