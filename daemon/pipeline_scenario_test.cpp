// Runs every pipeline scenario script in tests/scenarios/pipeline/*.txt (the language:
// README.md there) and compares what each command prints with the output written below it.
// A mismatch prints the command, its line and a diff. RAFT_SCENARIO_REWRITE=1 (or --rewrite
// on the command line) rewrites the files with the actual output instead, for review with
// `git diff`; RAFT_SCENARIO=name runs only name.txt. Same conventions as raft_test's scripts.
#include <doctest/doctest.h>

#include <cstdlib>

#include "daemon/testing/pipeline_scenario.h"
#include "raft/testing/drivers.h"
#include "raft/testing/scenario.h"

using raftd::daemon::testing::PipelineScenario;
using namespace raftd::raft::testing;

TEST_CASE("pipeline_scenario_scripts_print_what_their_expected_output_says") {
    auto files = scenario_files("pipeline");
    if (std::getenv("RAFT_SCENARIO") != nullptr && files.empty()) return;  // raft_test's name
    REQUIRE_MESSAGE(!files.empty(), "no scenario files found under tests/scenarios/pipeline");
    if (std::getenv("RAFT_SCENARIO") == nullptr) CHECK(files.size() >= 9);
    check_scenario_scripts(files, kAsWritten, [](bool) { return PipelineScenario(); });
}
