// Runs every scenario script in tests/scenarios/raft/*.txt (the language: README.md there)
// and compares what each command prints with the output written below it. A mismatch
// prints the command, its line and a diff. With RAFT_SCENARIO_REWRITE=1 in the environment
// (or --rewrite on the test binary's command line) the files are rewritten with the actual
// output instead, for review with `git diff`. RAFT_SCENARIO=name runs only name.txt. Every
// script runs in both profiles (raft/testing/scenario.h): as written, and in raftd's
// production configuration against its "---- production" sections.
#include <doctest/doctest.h>

#include <cstdlib>

#include "raft/testing/drivers.h"
#include "raft/testing/scenario.h"

using namespace raftd::raft::testing;

TEST_CASE("scenario_scripts_print_what_their_expected_output_says") {
    auto files = scenario_files("raft");
    REQUIRE_MESSAGE(!files.empty(), "no scenario files found under tests/scenarios/raft");
    if (std::getenv("RAFT_SCENARIO") == nullptr) CHECK(files.size() >= 25);
    // Each script runs twice: as written (step by step) and in raftd's configuration, so
    // the batching and quiet commit notices that ship are what the scripts exercise.
    check_scenario_scripts(files, kWithProduction, [](bool production) {
        return ScenarioRunner(production ? ScenarioProfile::kProduction
                                         : ScenarioProfile::kStepByStep);
    });
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
