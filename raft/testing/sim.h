// Sim: a seeded randomized simulation of a raft cluster under faults, checking Raft's safety
// properties after every step and liveness once the faults stop (docs/raft.md,
// "Randomized simulation").
//
// Owns: 3-7 replicas, an unreliable network (loss, duplication, delay and so reordering,
// partitions), the crash and restart schedule, the fault schedule, and the checkers. A
// replica is what SimOptions::make_replica builds: by default a Peer (a Node, its
// MemoryStorage and a toy application: the persistence contract modelled in the test); the
// pipeline simulation (daemon/testing/pipeline_sim.h) plugs in the daemon's ReadyPipeline
// over a storage model that loses unsynced writes instead.
// Never: randomness beyond its seed, or time: the same seed replays the same run exactly.
// Thread rules: single-threaded test code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/node.h"

namespace raftd::raft::testing {

// What a replica reports to the simulation's checkers while it works.
class SimObserver {
  public:
    virtual ~SimObserver() = default;
    // The application applied `e` (delivery must be gap-free).
    virtual void applied(NodeId id, const Entry& e) = 0;
    // The application restored a snapshot from its leader holding `app`.
    virtual void restored(NodeId id, const SnapshotMeta& meta, const std::vector<Entry>& app) = 0;
    // Entries entered the node's log (Ready or storage), after an entry of term `prev`.
    virtual void appended(NodeId id, const std::vector<Entry>& ents, Term prev) = 0;
    // The node's role or leader changed.
    virtual void role_changed(NodeId id, const SoftState& ss) = 0;
    virtual void trace(const std::string& line) = 0;
    // Something that must never happen (a refused write, a fatal pipeline error).
    virtual void fail(const std::string& why) = 0;
};

// One simulated replica as the simulation drives it.
class SimReplica {
  public:
    virtual ~SimReplica() = default;
    virtual bool up() const = 0;
    virtual Node& node() = 0;
    // (Re)creates the Node from what is durable; the application restarts from what it
    // kept (applied()).
    virtual Status start() = 0;
    // Loses everything not durable; with `mid_write`, in the middle of a write if one is going on.
    virtual void crash(bool mid_write) = 0;
    // One tick of logical time.
    virtual void tick() = 0;
    // One chance to move the Ready cycle and the disk on; `lag` is the chance that a write in
    // progress is not finished yet. Messages to send go to `out`. What happened:
    //   kNone: nothing; kOwnWrite: a leader's own entries became durable;
    //   kPersisted: a write finished (or the replica moved otherwise): read states may be
    //   served, messages sent, leaders changed; kTook: a Ready was taken, its immediate
    //   messages are in `out`.
    enum class Work { kNone, kOwnWrite, kPersisted, kTook };
    virtual Work work(Rng& rng, double lag, std::vector<Message>& out) = 0;
    // The application: every entry applied, from index 1 (restored prefix included).
    virtual const std::vector<Entry>& applied() const = 0;
    Index applied_index() const { return applied().empty() ? 0 : applied().back().index; }
    virtual std::vector<ReadState>& read_states() = 0;
    // The durable log's first index and snapshot index.
    virtual Index first_index() const = 0;
    virtual Index snapshot_index() const = 0;
    // Snapshot the application at index i (<= applied) and compact the log up to it.
    virtual Status compact(Index i) = 0;
    // Counters for the report, summed over replicas into SimResult::counters.
    virtual void add_counters(std::map<std::string, uint64_t>& c) const { (void)c; }
};

struct SimReplicaParams {
    NodeId id = kNoNode;
    Config cfg;                     // cfg.id == id
    std::vector<Member> bootstrap;  // the initial voters when this node is one; else empty
    bool async_leader = false;      // a leader writes its entries while replicating (Peer)
    uint64_t seed = 0;              // for the replica's own random choices
    SimObserver* observer = nullptr;
};
using SimReplicaFactory = std::function<std::unique_ptr<SimReplica>(const SimReplicaParams&)>;

struct SimOptions {
    uint64_t seed = 1;
    int fault_ticks = 600;  // ticks of random faults before healing
    // After healing: a leader must be elected and commit a new proposal within this many
    // ticks (in units of the run's election timeout).
    int liveness_election_timeouts = 30;
    bool print_trace = false;  // echo every trace line to stderr as it happens
    // Builds each replica; empty: a Peer over MemoryStorage.
    SimReplicaFactory make_replica;
};

struct SimResult {
    bool ok = true;
    std::string failure;  // what went wrong, when !ok
    std::string trace;    // the last trace lines, when !ok
    // Statistics, for reports.
    uint64_t ticks = 0;
    uint64_t steps = 0;  // delivered messages + handled Readys + injected events
    uint64_t messages = 0;
    uint64_t committed = 0;  // entries in the agreed committed sequence at the end
    uint64_t crashes = 0;
    uint64_t partitions = 0;
    uint64_t conf_changes = 0;
    uint64_t snapshots = 0;     // snapshots installed from a leader
    uint64_t leaders = 0;       // terms that had a leader
    uint64_t async_writes = 0;  // leader entry batches written after replication went on
    std::map<std::string, uint64_t> counters;  // SimReplica::add_counters, summed
};

SimResult run_simulation(const SimOptions& opt);

}  // namespace raftd::raft::testing
