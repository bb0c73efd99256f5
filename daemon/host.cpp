// The running daemon: see host.h. The Ready pipeline (process / on_persisted / finish_ready)
// is where the persistence contract of docs/raft.md is enforced.
#include "daemon/host.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <random>

#include "daemon/log.h"
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
    h->transport_ = std::make_unique<Transport>(
        h->loop_.get(), to,
        [hp = h.get()](raft::Message&& m) {
            // An empty node waiting to bootstrap must not vote (first_boot.cpp).
            if (hp->awaiting_peers_) return;
            if (Status st = hp->node_->step(m); !st)
                spdlog::debug("raft refused {}: {}", raft::describe(m), st.message());
        },
        [hp = h.get()] { hp->kick(); });
    h->transport_->set_hello_handler(
        [hp = h.get()](const PeerHello& m) { return hp->on_hello(m); });
    h->transport_->set_welcome_handler(
        [hp = h.get()](raft::NodeId id, const PeerWelcome& w) { hp->on_welcome(id, w); });
    if (Status st = h->transport_->start(); !st) return st;
    auto dir = DataDir::open(cfg.data_dir, cfg.cluster, cfg.node_id);
    if (!dir) return dir.status();
    h->dir_ = std::move(dir).value();

    StoreOptions so;
    so.segment_bytes = cfg.wal_segment_size;
    so.cache_bytes = cfg.wal_cache_bytes;
    so.keep_entries = cfg.log_keep_entries;
    so.snapshot_keep = cfg.snapshot_keep;
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
    if (st)
        st = tick_.start(cfg_.tick_ms, cfg_.tick_ms, [this] {
            node_->tick();
            process();
            commit_due_ = true;
            // Idle: write the commit index the last Readies left behind.
            if (lazy_hs_ && !persisting_ && async_jobs_ == 0 && !stopping_) flush_commit_index();
        });
    if (st) st = kick_check_.init(loop_.get());
    if (st)
        st = kick_check_.start([this] {
            while (kicked_) {
                kicked_ = false;
                process();
            }
        });
    if (st) st = sigterm_.init(loop_.get());
    if (st) st = sigterm_.start(SIGTERM, [this](int) { shutdown("SIGTERM"); });
    if (st) st = sigint_.init(loop_.get());
    if (st) st = sigint_.start(SIGINT, [this](int) { shutdown("SIGINT"); });
    if (st) st = sighup_.init(loop_.get());
    if (st)
        st = sighup_.start(SIGHUP, [](int) {
            if (Status r = reopen_logs(); !r)
                spdlog::error("SIGHUP: {}", r.message());
            else
                spdlog::info("SIGHUP: log file reopened");
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
    process();
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

// ---- the Ready pipeline -----------------------------------------------------------------

void NodeHost::kick() {
    // Before start() (no check handle yet) or after stop there is no later iteration to wait for.
    if (kick_check_.is_open())
        kicked_ = true;
    else
        process();
}

namespace {
// The hard state differs from the one last written only in its commit index: nothing a
// message or a restart depends on. The commit can be learned again from the leader
// (docs/wal-format.md), and the entries it covers are durable already.
bool commit_only(const raft::Ready& rd, const raft::HardState& written) {
    return rd.hard_state && !rd.snapshot && rd.snapshot_chunks.empty() &&
           rd.hard_state->term == written.term && rd.hard_state->vote == written.vote;
}
}  // namespace

void NodeHost::attach_hard_state(PersistJob& job) {
    if (job.hard_state) {
        lazy_hs_.reset();  // the newer hard state carries the newer commit
    } else if (lazy_hs_ && commit_due_) {
        // At most once per tick: a LevelDB write per batch would cost every batch a syscall.
        job.hard_state = lazy_hs_;
        lazy_hs_.reset();
    }
    if (job.hard_state) {
        written_hs_ = *job.hard_state;
        commit_due_ = false;
    }
    ++stats_.persist_jobs;
    stats_.persisted_entries += job.entries.size();
}

void NodeHost::queue_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last) {
    if (async_jobs_ == 0) {
        submit_leader_entries(std::move(entries), last);
        return;
    }
    // One batch is syncing: what the loop hands out meanwhile becomes the next one.
    if (async_next_.empty()) {
        async_next_ = std::move(entries);
    } else {
        for (auto& e : entries)
            async_next_.push_back(std::move(e));
    }
    async_next_last_ = last;
}

void NodeHost::submit_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last) {
    PersistJob job;
    job.entries = std::move(entries);
    attach_hard_state(job);
    ++stats_.leader_async_jobs;
    ++async_jobs_;
    persist_on_worker(std::move(job), [this, last](Status st) {
        on_leader_entries_persisted(std::move(st), last);
    });
}

void NodeHost::persist_on_worker(PersistJob job, std::function<void(Status)> done) {
    auto shared = std::make_shared<PersistJob>(std::move(job));
    worker_->submit([this, shared] { return store_->persist(*shared); }, std::move(done));
}

void NodeHost::flush_leader_entries() {
    if (async_next_.empty()) return;
    auto next = std::move(async_next_);
    async_next_.clear();
    submit_leader_entries(std::move(next), async_next_last_);
}

void NodeHost::on_leader_entries_persisted(Status st, raft::EntryId last) {
    --async_jobs_;
    if (!st) {
        fatal("write-ahead log: " + st.to_string());
        return;
    }
    node_->entries_persisted(last);  // the leader may now count itself: commit may advance
    flush_leader_entries();
    if (stopping_) {
        if (!persisting_ && async_jobs_ == 0) finish_shutdown();
        return;
    }
    process();
}

void NodeHost::submit_persist(PersistJob job) {
    // Leader batches still waiting go first: the storage thread writes in submission order.
    flush_leader_entries();
    attach_hard_state(job);
    persisting_ = true;
    persist_on_worker(std::move(job), [this](Status st) { on_persisted(std::move(st)); });
}

bool NodeHost::persist_inline(PersistJob& job) {
    // Leader batches waiting in async_next_ imply one on the worker, so outstanding() covers them.
    if (!cfg_.persist_on_loop || worker_->outstanding() != 0) return false;
    attach_hard_state(job);
    ++stats_.inline_jobs;
    if (Status st = store_->persist(job); !st) {
        fatal("write-ahead log: " + st.to_string());
    }
    return true;
}

void NodeHost::flush_commit_index() {
    // Through the pipeline like any batch, so no Ready is handed out while it runs and the
    // storage thread stays the only writer.
    submit_persist(PersistJob{});
}

void NodeHost::process() {
    // One Ready at a time: while a batch is on the storage thread, new steps and proposals
    // accumulate inside raft and leave as the next Ready (group commit).
    if (in_process_ || persisting_ || stopped_) return;
    in_process_ = true;
    while (!persisting_ && !stopped_ && node_->has_ready()) {
        raft::Ready rd = node_->ready();
        ++stats_.readies;
        if (rd.soft_state) on_role_change(*rd.soft_state);
        if (rd.hard_state && rd.hard_state->term != logged_term_) {
            logged_term_ = rd.hard_state->term;
            spdlog::debug("term {}", logged_term_);
            if (events_.role_changed) events_.role_changed();
        }
        // Step 1 of the contract: these never depend on this Ready's writes. In particular
        // the leader's AppendEntries go out now and replicate while its own batch syncs
        // (thesis 10.2.1). Step 4 moves up: raft hands out only committed entries that are
        // durable already, so their replies need not wait for this Ready's own write. New
        // entries go to the followers first (their fsync is the longer path); a Ready
        // without any (a commit notice) lets the clients' replies go first instead.
        // A snapshot being installed comes first, though: subscribers read the entries
        // after it from the store, so those wait for the install (finish_ready).
        const bool replicate_first = !rd.entries.empty();
        if (replicate_first) send_messages(rd);
        delivered_early_ = !rd.snapshot;
        if (delivered_early_) deliver(rd);  // queues the replies; written below
        const bool lazy = commit_only(rd, written_hs_);
        if (lazy) {
            lazy_hs_ = rd.hard_state;
            ++stats_.lazy_commit_writes;
        }
        const bool needs_disk = !rd.entries.empty() || rd.snapshot || !rd.snapshot_chunks.empty() ||
                                (rd.hard_state && !lazy);
        // A leader's own entries: they are written while it goes on replicating and
        // committing (it counts itself only once they are durable, raft.md), so the next
        // batch need not wait for this one's sync.
        const bool leader_async = cfg_.leader_async_append &&
                                  node_->role() == raft::Role::kLeader && !rd.entries.empty() &&
                                  !rd.snapshot && rd.snapshot_chunks.empty() &&
                                  rd.persisted_messages.empty() && (!rd.hard_state || lazy);
        if (leader_async) {
            std::vector<raft::Entry> entries = std::move(rd.entries);
            flush_clients();
            pending_ = std::move(rd);
            raft::EntryId last = finish_ready(/*entries_durable=*/false);
            queue_leader_entries(std::move(entries), last);
            continue;
        }
        if (needs_disk) {
            PersistJob job;
            job.chunks = std::move(rd.snapshot_chunks);
            job.snapshot = rd.snapshot;
            job.entries = std::move(rd.entries);
            if (!lazy) job.hard_state = rd.hard_state;
            // Replies to write (a busy leader): the storage thread syncs while the loop
            // writes them. Nothing else to do meanwhile (a follower, a quiet leader): the
            // loop syncs itself and saves the hand-off.
            const bool output = events_.clients_have_output && events_.clients_have_output();
            if (!output && persist_inline(job)) {
                if (stopped_) break;
                if (!replicate_first) send_messages(rd);
                pending_ = std::move(rd);
                finish_ready();
                continue;
            }
            submit_persist(std::move(job));
            flush_clients();
            if (!replicate_first) send_messages(rd);
            pending_ = std::move(rd);
            break;
        }
        flush_clients();
        if (!replicate_first) send_messages(rd);
        pending_ = std::move(rd);
        finish_ready();
    }
    in_process_ = false;
}

void NodeHost::on_persisted(Status st) {
    persisting_ = false;
    if (!st) {
        // Never retried: after a failed write or fsync the kernel may have dropped the data,
        // and carrying on would acknowledge entries that are not on disk.
        fatal("write-ahead log: " + st.to_string());
        return;
    }
    if (pending_) finish_ready();  // none after a commit-index-only flush
    if (stopping_) {
        if (async_jobs_ == 0) finish_shutdown();
        return;
    }
    process();
}

void NodeHost::send_messages(raft::Ready& rd) {
    if (rd.messages.empty()) return;
    for (const auto& m : rd.messages)
        transport_->send(m);
    transport_->flush();
}

void NodeHost::deliver(raft::Ready& rd) {
    conf_may_change_ = rd.snapshot.has_value();
    if (!rd.committed_entries.empty()) {
        delivered_ = rd.committed_entries.back().index;
        stats_.committed_entries += rd.committed_entries.size();
        for (const auto& e : rd.committed_entries)
            conf_may_change_ |= e.type == raft::EntryType::kConfig;
        if (events_.committed) events_.committed(rd.committed_entries);
    }
    if (!rd.read_states.empty() && events_.read_states) events_.read_states(rd.read_states);
}

void NodeHost::flush_clients() {
    if (events_.clients_have_output && events_.clients_have_output() && events_.flush_clients)
        events_.flush_clients();
}

raft::EntryId NodeHost::finish_ready(bool entries_durable) {
    raft::Ready& rd = *pending_;
    // Step 3: everything in this Ready is durable now. Only now may a follower acknowledge
    // the entries, a voter grant its vote and a candidate ask for votes: each of these
    // promises something about our disk.
    if (!rd.persisted_messages.empty()) {
        for (const auto& m : rd.persisted_messages)
            transport_->send(m);
        transport_->flush();
    }
    // Step 4, unless process() ran it already.
    if (!delivered_early_) {
        deliver(rd);
        flush_clients();
    }
    const bool conf_may_change = conf_may_change_;
    conf_may_change_ = false;
    pending_.reset();  // `rd` is gone from here on
    // Step 5.
    raft::EntryId last;
    if (entries_durable)
        node_->advance();
    else
        last = node_->advance_except_entries();
    if (conf_may_change) {
        sync_peers();
        if (events_.applied) events_.applied();
    }
    return last;
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

void NodeHost::on_role_change(const raft::SoftState& ss) {
    const raft::Term term = node_->term();
    if (ss.role == raft::Role::kLeader && soft_.role != raft::Role::kLeader) {
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
    // The batches on the storage thread, if any, are finished first (on_persisted,
    // on_leader_entries_persisted).
    flush_leader_entries();
    if (!persisting_ && async_jobs_ == 0) finish_shutdown();
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
    if (lazy_hs_ && exit_code_ == 0) {
        // The storage thread is gone: this thread is the only writer now.
        PersistJob job;
        job.hard_state = lazy_hs_;
        lazy_hs_.reset();
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
        stats_.readies, stats_.persist_jobs, stats_.inline_jobs, stats_.leader_async_jobs,
        stats_.persisted_entries, transport_ ? transport_->stats().writes : 0,
        transport_ ? transport_->stats().sent : 0, transport_ ? transport_->stats().dropped : 0);
    // Handles owned by the client side are closed by their owners; stop the loop now so
    // run() returns even if one of them lingers.
    loop_.stop();
}

}  // namespace raftd::daemon
