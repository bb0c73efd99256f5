// PipelineReplica: one node of the pipeline simulation. The real raft::Node and the real
// daemon ReadyPipeline over SimStore (a storage model that loses every unsynced write at a
// power loss), with a modelled storage thread: jobs handed to it run in order, each after a
// random delay, and a power loss can strike in the middle of one.
//
// Owns: the SimDisk (what survives a crash), the store, Node and pipeline of the running
// process, the storage thread's queue, and a toy application (every entry delivered, the
// raft simulation's format) whose restart state is the snapshot plus every entry up to the
// recovered commit index, which the daemon counts as delivered before the crash.
// Never: let the pipeline's actions reach anything but this replica's queues; randomness
// beyond its seed.
// Thread rules: single-threaded test code.
//
// run_pipeline_simulation() is raft's randomized simulation (raft/testing/sim.h: network
// faults, partitions, crashes, membership changes, compaction and its checkers) with these
// replicas in place of raft's Peer.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "daemon/ready_pipeline.h"
#include "daemon/testing/sim_store.h"
#include "raft/testing/sim.h"

namespace raftd::daemon::testing {

class PipelineReplica final : public raft::testing::SimReplica, public PipelineActions {
  public:
    PipelineReplica(const raft::testing::SimReplicaParams& p, SimStoreOptions store);
    ~PipelineReplica() override;

    // ---- SimReplica ----
    bool up() const override { return node_ != nullptr; }
    raft::Node& node() override { return *node_; }
    Status start() override;
    // A power loss (power_loss), or now and then without mid_write a graceful stop
    // (stop_gracefully).
    void crash(bool mid_write) override;
    void tick() override;
    Work work(raft::Rng& rng, double lag, std::vector<raft::Message>& out) override;
    const std::vector<raft::Entry>& applied() const override { return app_; }
    std::vector<raft::ReadState>& read_states() override { return reads_; }
    raft::Index first_index() const override { return disk_.log.first_index(); }
    raft::Index snapshot_index() const override { return disk_.log.snapshot_meta().index; }
    // Queued on the storage thread as the daemon's snapshot upload is (app_snapshot_*).
    Status compact(raft::Index i) override;
    void add_counters(std::map<std::string, uint64_t>& c) const override;

    // With mid_write and a job on the storage thread, the oldest job is torn (a prefix of its
    // entries kept) or finished just before the power went (its completion never reached the
    // loop), at random; the jobs behind it never ran. Then unsynced LevelDB writes are lost
    // (SimDisk::power_loss).
    void power_loss(bool mid_write);
    // What SIGTERM does: the pipeline drains, the unwritten commit index is written, the
    // process exits (nothing the kernel holds is lost).
    void stop_gracefully();

    // ---- for scripted scenarios ----
    SimDisk& disk() { return disk_; }
    ReadyPipeline& pipeline() { return *pipe_; }
    size_t storage_queue() const { return worker_.size(); }
    // Runs the oldest task of the storage thread and reports it to the pipeline.
    void finish_storage_task();
    // Feeds the pipeline (what the daemon's kick does) and moves what it sent to `out`.
    void process(std::vector<raft::Message>& out);

    // ---- PipelineActions ----
    void send(const std::vector<raft::Message>& msgs) override;
    bool storage_idle() override { return worker_.empty(); }
    Status persist_inline(PersistJob& job) override;
    void persist_on_worker(PersistJob job) override;
    bool clients_have_output() override { return rng_.chance(busy_clients_); }
    void flush_clients() override {}
    void deliver(const std::vector<raft::Entry>& committed) override;
    void read_states(const std::vector<raft::ReadState>& rs) override;
    void snapshot_installed(const raft::SnapshotMeta& meta) override;
    void role_changed(const raft::SoftState& ss) override;
    void term_changed(raft::Term) override {}
    void advanced(const Advanced&) override {}
    void fatal(const std::string& why) override;
    void drained() override {}

  private:
    struct Task {
        bool app_snapshot = false;
        PersistJob job;           // a pipeline job
        raft::SnapshotMeta meta;  // an application snapshot
        std::string data;
    };
    void collect_stats();
    void exit_process();  // drops everything of the running process

    raft::NodeId id_;
    raft::Config cfg_;
    raft::Rng rng_;
    raft::testing::SimObserver& obs_;
    SimStoreOptions store_opt_;
    // How often client replies wait to be written: jobs then go to the storage thread
    // rather than inline, where a power loss can tear them.
    double busy_clients_;
    // The chance that the storage thread finishes its current job when it gets the chance
    // (a slow disk keeps jobs in flight longer, so more power losses tear one).
    double disk_speed_;
    SimDisk disk_;
    std::unique_ptr<SimStore> store_;
    std::unique_ptr<raft::Node> node_;
    std::unique_ptr<ReadyPipeline> pipe_;
    std::deque<Task> worker_;
    std::vector<raft::Message> outbox_;
    std::vector<raft::Entry> app_;
    std::vector<raft::ReadState> reads_;
    bool fatal_ = false;
    std::map<std::string, uint64_t> counters_;
};

// raft's randomized simulation with PipelineReplicas (opt.make_replica is set here).
raft::testing::SimResult run_pipeline_simulation(raft::testing::SimOptions opt,
                                                 SimStoreOptions store = {});

}  // namespace raftd::daemon::testing
