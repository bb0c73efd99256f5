// One node of the pipeline simulation: see pipeline_sim.h.
#include "daemon/testing/pipeline_sim.h"

#include <algorithm>

#include "raft/testing/peer.h"

namespace raftd::daemon::testing {

using raft::testing::Peer;

PipelineReplica::PipelineReplica(const raft::testing::SimReplicaParams& p, SimStoreOptions store)
    : id_(p.id), cfg_(p.cfg), rng_(p.seed), obs_(*p.observer), store_opt_(store) {
    cfg_.id = p.id;
    busy_clients_ = static_cast<double>(rng_.uniform(1, 10)) / 10.0;
    disk_speed_ = static_cast<double>(rng_.uniform(2, 11)) / 10.0;
    if (!p.bootstrap.empty()) {
        // What NodeHost::open writes for a new cluster's initial member.
        SimStore s(disk_, store_opt_);
        PersistJob job;
        job.entries.push_back(raft::bootstrap_entry(p.bootstrap));
        job.hard_state = raft::HardState{1, raft::kNoNode, 1};
        if (Status st = s.persist(job); !st) obs_.fail("bootstrap: " + st.to_string());
    }
}

PipelineReplica::~PipelineReplica() = default;

Status PipelineReplica::start() {
    store_ = std::make_unique<SimStore>(disk_, store_opt_);
    store_->on_append = [this](const std::vector<raft::Entry>& ents, raft::Term prev) {
        obs_.appended(id_, ents, prev);
    };
    const raft::InitialState init = store_->storage().initial_state();
    // As NodeHost::open: everything committed before the restart was delivered already
    // (subscribers read it back from the log), so raft resumes applying after it.
    raft::Config rc = cfg_;
    rc.applied = init.hard.commit;
    auto n = raft::Node::create(rc, store_->storage(), store_->snapshots());
    if (!n) {
        store_.reset();
        return n.status();
    }
    node_ = std::move(n).value();
    app_ = Peer::decode_app(disk_.log.snapshot_data());
    const raft::Index snap = disk_.log.snapshot_meta().index;
    if (init.hard.commit > snap) {
        auto ents = disk_.log.entries(snap + 1, init.hard.commit + 1, UINT64_MAX);
        if (!ents) return ents.status();
        app_.insert(app_.end(), ents->begin(), ents->end());
    }
    reads_.clear();
    outbox_.clear();
    worker_.clear();
    fatal_ = false;
    pipe_ = std::make_unique<ReadyPipeline>(*node_, *this, init.hard, init.hard.commit);
    return Status::ok();
}

namespace {
void add_stats(std::map<std::string, uint64_t>& c, const PipelineStats& s) {
    c["pipeline jobs"] += s.persist_jobs;
    c["inline jobs"] += s.inline_jobs;
    c["leader async jobs"] += s.leader_async_jobs;
    c["lazy commit writes"] += s.lazy_commit_writes;
}
}  // namespace

void PipelineReplica::collect_stats() {
    if (pipe_) add_stats(counters_, pipe_->stats());
}

void PipelineReplica::crash(bool mid_write) {
    if (!up()) return;
    // Most crashes are power losses; some are what SIGTERM does (the pipeline drains, the
    // unwritten commit index is written, the process exits: the kernel keeps what it has).
    if (!mid_write && rng_.chance(0.3)) {
        stop_gracefully();
    } else {
        power_loss(mid_write);
    }
}

void PipelineReplica::power_loss(bool mid_write) {
    if (!up()) return;
    if (mid_write && !worker_.empty() && !worker_.front().app_snapshot) {
        PersistJob& job = worker_.front().job;
        if (rng_.chance(0.5)) {
            const size_t keep = rng_.uniform(0, job.entries.size() + 1);
            store_->persist_torn(job, rng_.chance(0.5), keep);
            ++counters_["torn jobs"];
        } else {
            (void)store_->persist(job);  // done, but the loop never heard of it
            ++counters_["jobs finished unreported"];
        }
    }
    const size_t unsynced = disk_.unsynced.size();
    const raft::HardState before = disk_.current_hs();
    disk_.power_loss(rng_);
    if (unsynced > 0) {
        ++counters_["power losses with unsynced writes"];
        if (disk_.current_hs() != before) ++counters_["hard states lost"];
    }
    exit_process();
}

// NodeHost::shutdown and finish_shutdown: the pipeline takes no new Ready and drains the jobs
// on the storage thread (what is queued behind them is dropped when that thread stops); the
// commit index never written is written last, on this thread. Messages sent meanwhile are
// dropped with the transport.
void PipelineReplica::stop_gracefully() {
    if (!up()) return;
    obs_.trace(std::to_string(id_) + " stops gracefully");
    pipe_->stop();
    while (!pipe_->stopped() && !worker_.empty())
        finish_storage_task();
    if (!pipe_->stopped()) {
        obs_.fail(std::to_string(id_) +
                  ": the pipeline did not drain although the storage "
                  "thread is idle");
    }
    if (auto hs = pipe_->take_unwritten_hard_state()) {
        PersistJob job;
        job.hard_state = hs;
        if (Status st = store_->persist(job); !st)
            obs_.fail("writing the commit index: " + st.to_string());
    }
    (void)store_->close();
    ++counters_["graceful stops"];
    exit_process();
}

void PipelineReplica::exit_process() {
    collect_stats();
    pipe_.reset();
    node_.reset();
    store_.reset();
    worker_.clear();
    outbox_.clear();
    app_.clear();
    reads_.clear();
}

void PipelineReplica::tick() {
    if (up() && !pipe_->stopped()) pipe_->tick();
}

void PipelineReplica::finish_storage_task() {
    if (worker_.empty()) return;
    Task t = std::move(worker_.front());
    worker_.pop_front();
    if (t.app_snapshot) {
        // The daemon's snapshot upload (the client `snapshot` op); refusals (a leader's
        // snapshot overtook it) are answered to the client and change nothing.
        Status st = store_->app_snapshot_begin(t.meta);
        if (st) st = store_->app_snapshot_write(0, t.data);
        if (st) st = store_->app_snapshot_finish();
        if (!st) store_->app_snapshot_abort();
        if (st) ++counters_["application snapshots"];
        return;
    }
    Status st = store_->persist(t.job);
    pipe_->persisted(std::move(st));
}

void PipelineReplica::process(std::vector<raft::Message>& out) {
    if (up() && !pipe_->stopped()) pipe_->process();
    for (auto& m : outbox_)
        out.push_back(std::move(m));
    outbox_.clear();
}

raft::testing::SimReplica::Work PipelineReplica::work(raft::Rng& rng, double lag,
                                                      std::vector<raft::Message>& out) {
    if (!up() || pipe_->stopped()) return Work::kNone;
    bool did = false;
    if (!worker_.empty() && !rng.chance(lag) && rng_.chance(disk_speed_)) {
        finish_storage_task();
        did = true;
    }
    if (!up()) return Work::kNone;  // fatal
    process(out);
    return did || !out.empty() || !reads_.empty() ? Work::kPersisted : Work::kNone;
}

Status PipelineReplica::compact(raft::Index i) {
    if (!up()) return Status::unavailable("node is down");
    if (i > applied_index()) return Status::invalid_argument("not applied yet");
    auto meta = node_->snapshot_meta(i);
    if (!meta) return meta.status();
    std::vector<raft::Entry> prefix;
    for (const raft::Entry& e : app_)
        if (e.index <= i) prefix.push_back(e);
    Task t;
    t.app_snapshot = true;
    t.meta = *meta;
    t.data = Peer::encode_app(prefix);
    worker_.push_back(std::move(t));
    return Status::ok();
}

void PipelineReplica::add_counters(std::map<std::string, uint64_t>& c) const {
    for (const auto& [k, v] : counters_)
        c[k] += v;
    if (pipe_) add_stats(c, pipe_->stats());
}

// ---- PipelineActions ---------------------------------------------------------------------------

void PipelineReplica::send(const std::vector<raft::Message>& msgs) {
    outbox_.insert(outbox_.end(), msgs.begin(), msgs.end());
}

Status PipelineReplica::persist_inline(PersistJob& job) {
    if (!worker_.empty()) {
        obs_.fail(std::to_string(id_) +
                  ": a job persisted inline while the storage thread is busy");
    }
    return store_->persist(job);
}

void PipelineReplica::persist_on_worker(PersistJob job) {
    Task t;
    t.job = std::move(job);
    worker_.push_back(std::move(t));
}

void PipelineReplica::deliver(const std::vector<raft::Entry>& committed) {
    for (const raft::Entry& e : committed) {
        app_.push_back(e);
        obs_.applied(id_, e);
    }
}

void PipelineReplica::read_states(const std::vector<raft::ReadState>& rs) {
    reads_.insert(reads_.end(), rs.begin(), rs.end());
}

void PipelineReplica::snapshot_installed(const raft::SnapshotMeta& meta) {
    app_ = Peer::decode_app(disk_.log.snapshot_data());
    obs_.restored(id_, meta, app_);
}

void PipelineReplica::role_changed(const raft::SoftState& ss) {
    obs_.role_changed(id_, ss);
}

void PipelineReplica::fatal(const std::string& why) {
    fatal_ = true;
    obs_.fail("node " + std::to_string(id_) + " stopped: " + why);
}

raft::testing::SimResult run_pipeline_simulation(raft::testing::SimOptions opt,
                                                 SimStoreOptions store) {
    opt.make_replica = [store](const raft::testing::SimReplicaParams& p) {
        return std::make_unique<PipelineReplica>(p, store);
    };
    return raft::testing::run_simulation(opt);
}

}  // namespace raftd::daemon::testing
