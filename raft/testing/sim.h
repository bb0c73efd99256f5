// Sim: a seeded randomized simulation of a raft cluster under faults, checking Raft's safety
// properties after every step and liveness once the faults stop (docs/raft.md,
// "Randomized simulation").
//
// Owns: 3-7 Peers (a Node, its MemoryStorage and a toy application each), an unreliable
// network (loss, duplication, delay and so reordering, partitions), crashes that lose
// everything not persisted, the fault schedule, and the checkers.
// Never: randomness beyond its seed, or time: the same seed replays the same run exactly.
// Thread rules: single-threaded test code.
#pragma once

#include <cstdint>
#include <string>

namespace raftd::raft::testing {

struct SimOptions {
    uint64_t seed = 1;
    int fault_ticks = 600;  // ticks of random faults before healing
    // After healing: a leader must be elected and commit a new proposal within this many
    // ticks (in units of the run's election timeout).
    int liveness_election_timeouts = 30;
    bool print_trace = false;  // echo every trace line to stderr as it happens
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
};

SimResult run_simulation(const SimOptions& opt);

}  // namespace raftd::raft::testing
