// Scenario: the interpreter of the raft scenario scripts under tests/scenarios/raft/*.txt
// (the language is documented in tests/scenarios/raft/README.md). A script is a story: a
// comment paragraph, a command, "----", and what the cluster printed, block after block.
//
// Owns: parsing and rendering of script files, and one Cluster per script that the commands
// drive.
// Never: randomness or time of its own (the same script always prints the same), and never
// decides what is "right": the expected output in the file is the reviewed truth.
// Thread rules: single-threaded test code.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/status.h"
#include "raft/testing/cluster.h"

namespace raftd::raft::testing {

// One command of a script, with the comment lines above it and its expected output.
struct ScenarioBlock {
    std::vector<std::string> comments;  // verbatim, blank lines included
    std::string command;
    std::string expected;  // without a trailing newline
    // What the command prints in the production profile, where that differs from `expected`
    // (a "---- production" section right below it).
    std::optional<std::string> expected_production;
    int line = 0;  // 1-based line of the command

    const std::string& expected_in(bool production) const {
        return production && expected_production ? *expected_production : expected;
    }
};

struct ScenarioFile {
    std::vector<ScenarioBlock> blocks;
    std::vector<std::string> trailing_comments;
};

Result<ScenarioFile> parse_scenario(const std::string& text);

// The scripts of tests/scenarios/<suite>/*.txt, sorted, found from the working directory
// upwards (tests run from the repository root; a developer may run a binary from anywhere
// inside it). RAFT_SCENARIO=name keeps only name.txt. Empty when the directory is missing.
std::vector<std::filesystem::path> scenario_files(const std::string& suite);
// RAFT_SCENARIO_REWRITE=1 in the environment, or --rewrite on the command line: rewrite the
// expected output instead of comparing it.
bool scenario_rewrite_requested();
// The file with each block's expected output replaced by `outputs` (same order). With
// `production_outputs`, a block gets a "---- production" section where they differ from
// `outputs`; without, each block keeps the production section it had.
std::string render_scenario(const ScenarioFile& f, const std::vector<std::string>& outputs,
                            const std::vector<std::string>* production_outputs = nullptr);

// The words of a command line, split at white space.
std::vector<std::string> split_words(const std::string& s);
// A command argument as a number (decimal digits only) or as true/false; false when it is not.
bool parse_u64(const std::string& s, uint64_t& v);
bool parse_bool(const std::string& s, bool& v);

// A line diff of expected vs actual ("-" expected only, "+" actual only, " " both).
std::string diff_lines(const std::string& expected, const std::string& actual);

// The raft configuration a script runs in. kStepByStep turns batch_appends and quiet commit
// notices off, so each proposal and each acknowledgement is a message of its own and a
// script can step through them; kProduction leaves both on, as raftd runs. Options given
// to add-nodes apply in both.
enum class ScenarioProfile { kStepByStep, kProduction };

class ScenarioRunner {
  public:
    explicit ScenarioRunner(ScenarioProfile profile = ScenarioProfile::kStepByStep);
    // Runs one command line and returns what it printed ("ok" when nothing).
    std::string run(const std::string& command_line);

  private:
    std::string exec(const std::vector<std::string>& args);
    Status add_nodes(const std::vector<std::string>& args);
    NodeId node_arg(const std::vector<std::string>& args, size_t i) const;
    std::vector<NodeId> targets(const std::vector<std::string>& args, size_t from) const;
    std::string describe_log(NodeId id);
    void emit(const std::string& s);

    Config base_;
    std::unique_ptr<Cluster> cluster_;
    NodeId next_id_ = 1;
    std::string out_;
};

}  // namespace raftd::raft::testing
