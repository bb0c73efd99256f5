// The doctest drivers that raft_test and daemon_test share: the scenario-script checker and
// the simulation seed loop. Each suite plugs in its own interpreter or simulation; what the
// scripts and seeds are checked against, and how a failure is reported, is the same.
//
// Owns: the per-file compare-or-rewrite loop, and the seeds-from-the-environment loop.
// Never: included by library code (it includes doctest and fails the running test case).
// Thread rules: test thread only.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "raft/testing/scenario.h"
#include "raft/testing/sim.h"

namespace raftd::raft::testing {

// Whether check_scenario_scripts() also runs each script in raftd's production profile,
// against its "---- production" sections (raft/testing/scenario.h).
constexpr bool kAsWritten = false, kWithProduction = true;

// Runs each script in `files` through a fresh interpreter, `make_runner(production)` (anything
// with `std::string run(const std::string& command)`), once as written and, with
// `production_too`, once more in the production profile, and fails the test for each command
// whose output differs from the file, with a diff. With scenario_rewrite_requested(),
// rewrites the files with the actual output instead.
template <class MakeRunner>
void check_scenario_scripts(const std::vector<std::filesystem::path>& files, bool production_too,
                            MakeRunner make_runner) {
    bool rewrite = scenario_rewrite_requested();
    for (const std::filesystem::path& path : files) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto parsed = parse_scenario(ss.str());
        REQUIRE_MESSAGE(parsed, path.filename().string() << ": " << parsed.status().to_string());
        std::vector<std::string> outputs[2];
        for (bool production : {false, true}) {
            if (production && !production_too) break;
            auto runner = make_runner(production);
            const std::string profile = production ? " [production]" : "";
            int mismatches = 0;
            for (const ScenarioBlock& b : parsed->blocks) {
                std::string got = runner.run(b.command);
                outputs[production].push_back(got);
                const std::string& want = b.expected_in(production);
                if (got != want && !rewrite) {
                    ++mismatches;
                    FAIL_CHECK(path.filename().string()
                               << ":" << b.line << profile << ": " << b.command << "\n"
                               << "--- expected\n+++ actual\n"
                               << diff_lines(want, got));
                }
            }
            CHECK_MESSAGE(mismatches == 0, path.filename().string() << profile << ": " << mismatches
                                                                    << " command(s) differ");
        }
        if (rewrite) {
            std::ofstream out(path, std::ios::trunc);
            out << render_scenario(*parsed, outputs[0], production_too ? &outputs[1] : nullptr);
            MESSAGE("rewrote " << path.filename().string());
        }
    }
}

// The number in environment variable `name`; `dflt` when it is unset or empty.
inline uint64_t env_u64(const std::string& name, uint64_t dflt) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return dflt;
    return std::strtoull(v, nullptr, 10);
}

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultSimSeeds = 100;
#else
constexpr uint64_t kDefaultSimSeeds = 300;
#endif

// What the seeds of one run_sim_seeds() call add up to.
struct SimTotals {
    uint64_t seeds = 0;
    uint64_t failures = 0;
    SimResult sum;  // statistics and counters summed over the seeds (ok/failure/trace unused)
};

// Runs `run(options)` for the seeds the environment selects, with `prefix` naming the
// variables: <prefix>_SEEDS=N runs seeds 1..N (default kDefaultSimSeeds), <prefix>_SEED=N
// replays one, <prefix>_TICKS sets the fault-phase ticks (default 600), <prefix>_TRACE=1
// prints the whole trace. A failing seed fails the test with its trace and the command that
// replays it (`replay`: the test binary and its -tc filter); after three failures it stops.
template <class Run>
SimTotals run_sim_seeds(const std::string& prefix, const std::string& replay, Run run) {
    uint64_t first = 1, last = env_u64(prefix + "_SEEDS", kDefaultSimSeeds);
    if (const char* one = std::getenv((prefix + "_SEED").c_str()); one != nullptr && *one != '\0')
        first = last = std::strtoull(one, nullptr, 10);
    SimOptions opt;
    opt.fault_ticks = static_cast<int>(env_u64(prefix + "_TICKS", 600));
    opt.print_trace = env_u64(prefix + "_TRACE", 0) == 1;
    SimTotals t;
    for (uint64_t seed = first; seed <= last; ++seed) {
        opt.seed = seed;
        SimResult r = run(opt);
        ++t.seeds;
        t.sum.ticks += r.ticks;
        t.sum.steps += r.steps;
        t.sum.messages += r.messages;
        t.sum.committed += r.committed;
        t.sum.crashes += r.crashes;
        t.sum.partitions += r.partitions;
        t.sum.conf_changes += r.conf_changes;
        t.sum.snapshots += r.snapshots;
        t.sum.leaders += r.leaders;
        t.sum.async_writes += r.async_writes;
        for (const auto& [k, v] : r.counters)
            t.sum.counters[k] += v;
        if (!r.ok) {
            ++t.failures;
            FAIL_CHECK(r.failure << "\n--- last trace lines ---\n"
                                 << r.trace << "replay: " << prefix << "_SEED=" << seed << " "
                                 << prefix << "_TRACE=1 " << replay);
            if (t.failures >= 3) break;  // enough to debug; do not flood the log
        }
    }
    return t;
}

// Runs `seed` twice (200 fault ticks) and checks that the run passed and both runs did exactly
// the same: a simulation that does not replay cannot be debugged by its seed.
template <class Run>
void check_seed_replays(uint64_t seed, Run run) {
    SimOptions opt;
    opt.seed = seed;
    opt.fault_ticks = 200;
    SimResult a = run(opt);
    SimResult b = run(opt);
    CHECK(a.ok);
    CHECK(a.ticks == b.ticks);
    CHECK(a.steps == b.steps);
    CHECK(a.messages == b.messages);
    CHECK(a.committed == b.committed);
    CHECK(a.counters == b.counters);
}

}  // namespace raftd::raft::testing
