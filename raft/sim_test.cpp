// Randomized simulation of whole clusters under faults (raft/testing/sim.h). Every seed is a
// different cluster size, configuration and fault schedule; the checks run after every step.
//
//   RAFT_SIM_SEEDS=N     run seeds 1..N (default: 300 in release builds, 100 under sanitizers)
//   RAFT_SIM_SEED=N      replay one seed (add RAFT_SIM_TRACE=1 to print its whole trace)
//   RAFT_SIM_TICKS=N     fault-phase ticks per seed (default 600)
//
// A failure prints the seed, what was violated and the last few hundred trace lines.
#include <doctest/doctest.h>

#include "raft/testing/drivers.h"
#include "raft/testing/sim.h"

using namespace raftd::raft::testing;

TEST_CASE("sim_randomized_clusters_keep_every_safety_property_and_recover_after_healing") {
    SimTotals t = run_sim_seeds("RAFT_SIM", "build/release/tests/raft_test -tc='sim*'",
                                [](const SimOptions& opt) { return run_simulation(opt); });
    const SimResult& r = t.sum;
    MESSAGE("simulated " << t.seeds << " seeds: " << r.ticks << " ticks, " << r.steps << " steps, "
                         << r.messages << " messages, " << r.leaders << " leader terms, "
                         << r.crashes << " crashes, " << r.partitions << " partitions, "
                         << r.conf_changes << " conf changes, " << r.snapshots
                         << " snapshot installs, " << r.async_writes
                         << " asynchronous leader writes, " << r.committed << " committed entries");
    // Both leader pipelines ran (seeds pick one each): a path that never ran proves nothing.
    if (t.seeds >= 20) CHECK(r.async_writes > 0);
    CHECK(t.failures == 0);
}

TEST_CASE("sim_the_same_seed_replays_the_same_run") {
    check_seed_replays(12345, [](const SimOptions& opt) { return run_simulation(opt); });
}
