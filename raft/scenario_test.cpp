// Runs every scenario script in tests/scenarios/raft/*.txt (the language: README.md there)
// and compares what each command prints with the output written below it. A mismatch
// prints the command, its line and a diff. With RAFT_SCENARIO_REWRITE=1 in the environment
// (or --rewrite on the test binary's command line) the files are rewritten with the actual
// output instead, for review with `git diff`. RAFT_SCENARIO=name runs only name.txt. Every
// script runs in both profiles (raft/testing/scenario.h): as written, and in raftd's
// production configuration against its "---- production" sections.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "raft/testing/scenario.h"

using namespace raftd::raft::testing;
namespace fs = std::filesystem;

TEST_CASE("scenario_scripts_print_what_their_expected_output_says") {
    auto files = scenario_files("raft");
    REQUIRE_MESSAGE(!files.empty(), "no scenario files found under tests/scenarios/raft");
    if (std::getenv("RAFT_SCENARIO") == nullptr) CHECK(files.size() >= 25);
    bool rewrite = scenario_rewrite_requested();
    for (const fs::path& path : files) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto parsed = parse_scenario(ss.str());
        REQUIRE_MESSAGE(parsed, path.filename().string() << ": " << parsed.status().to_string());
        // Each script runs twice: as written (step by step) and in raftd's configuration, so
        // the batching and quiet commit notices that ship are what the scripts exercise.
        std::vector<std::string> outputs[2];
        for (bool production : {false, true}) {
            ScenarioRunner runner(production ? ScenarioProfile::kProduction
                                             : ScenarioProfile::kStepByStep);
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
            out << render_scenario(*parsed, outputs[0], &outputs[1]);
            MESSAGE("rewrote " << path.filename().string());
        }
    }
}

TEST_CASE("scenario_files_parse_and_render_back_unchanged") {
    std::string text =
        "# a comment\n\nadd-nodes 3\n----\nok\n\n# second\ncampaign 1\n----\nline a\nline b\n";
    auto f = parse_scenario(text);
    REQUIRE(f);
    REQUIRE(f->blocks.size() == 2);
    CHECK(f->blocks[1].expected == "line a\nline b");
    CHECK(f->blocks[1].line == 8);
    CHECK(render_scenario(*f, {"ok", "line a\nline b"}) == text);
    CHECK_FALSE(parse_scenario("campaign 1\nno separator\n"));
}

TEST_CASE("scenario_production_sections_parse_and_render_only_where_outputs_differ") {
    std::string text = "propose 1 x\n----\na\nb\n---- production\nc\n\nstatus 1\n----\nd\n";
    auto f = parse_scenario(text);
    REQUIRE(f);
    REQUIRE(f->blocks.size() == 2);
    CHECK(f->blocks[0].expected == "a\nb");
    CHECK(f->blocks[0].expected_in(true) == "c");
    CHECK(f->blocks[1].expected_in(true) == "d");
    CHECK(render_scenario(*f, {"a\nb", "d"}) == text);
    std::vector<std::string> prod = {"a\nb", "e"};
    CHECK(render_scenario(*f, {"a\nb", "d"}, &prod) ==
          "propose 1 x\n----\na\nb\n\nstatus 1\n----\nd\n---- production\ne\n");
}

TEST_CASE("scenario_diff_marks_missing_and_extra_lines") {
    CHECK(diff_lines("a\nb\nc", "a\nx\nc") == "  a\n+ x\n- b\n  c\n");
}
