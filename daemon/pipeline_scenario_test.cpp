// Runs every pipeline scenario script in tests/scenarios/pipeline/*.txt (the language:
// README.md there) and compares what each command prints with the output written below it.
// A mismatch prints the command, its line and a diff. RAFT_SCENARIO_REWRITE=1 (or --rewrite
// on the command line) rewrites the files with the actual output instead, for review with
// `git diff`; RAFT_SCENARIO=name runs only name.txt. Same conventions as raft_test's scripts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/testing/pipeline_scenario.h"
#include "raft/testing/scenario.h"

using raftd::daemon::testing::PipelineScenario;
using namespace raftd::raft::testing;
namespace fs = std::filesystem;

TEST_CASE("pipeline_scenario_scripts_print_what_their_expected_output_says") {
    auto files = scenario_files("pipeline");
    if (std::getenv("RAFT_SCENARIO") != nullptr && files.empty()) return;  // raft_test's name
    REQUIRE_MESSAGE(!files.empty(), "no scenario files found under tests/scenarios/pipeline");
    if (std::getenv("RAFT_SCENARIO") == nullptr) CHECK(files.size() >= 9);
    bool rewrite = scenario_rewrite_requested();
    for (const fs::path& path : files) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto parsed = parse_scenario(ss.str());
        REQUIRE_MESSAGE(parsed, path.filename().string() << ": " << parsed.status().to_string());
        PipelineScenario runner;
        std::vector<std::string> outputs;
        int mismatches = 0;
        for (const ScenarioBlock& b : parsed->blocks) {
            std::string got = runner.run(b.command);
            outputs.push_back(got);
            if (got != b.expected && !rewrite) {
                ++mismatches;
                FAIL_CHECK(path.filename().string() << ":" << b.line << ": " << b.command << "\n"
                                                    << "--- expected\n+++ actual\n"
                                                    << diff_lines(b.expected, got));
            }
        }
        if (rewrite) {
            std::ofstream out(path, std::ios::trunc);
            out << render_scenario(*parsed, outputs);
            MESSAGE("rewrote " << path.filename().string());
        }
        CHECK_MESSAGE(mismatches == 0, path.filename().string()
                                           << ": " << mismatches << " command(s) differ");
    }
}
