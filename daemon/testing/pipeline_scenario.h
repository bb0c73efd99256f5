// PipelineScenario: the interpreter of the pipeline scenario scripts under
// tests/scenarios/pipeline/*.txt (the language is documented in the README there). Each
// node is a real raft::Node driven by a real ReadyPipeline; the pipeline's actions go to a
// fake that prints them in order, a FIFO "storage thread" whose jobs complete only when a
// script says `sync`, and a MemoryStorage that holds what completed jobs made durable.
//
// Owns: the simulated nodes, the message queue between them, and the trace.
// Never: randomness, clocks or threads (the same script always prints the same); decide
// what is right: the expected output in the file is the reviewed truth.
// Thread rules: single-threaded test code.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/message.h"
#include "raft/status.h"

namespace raftd::daemon::testing {

class PipelineScenario {
  public:
    PipelineScenario();
    ~PipelineScenario();
    PipelineScenario(const PipelineScenario&) = delete;
    PipelineScenario& operator=(const PipelineScenario&) = delete;

    // Runs one command line and returns what it printed ("ok" when nothing).
    std::string run(const std::string& command_line);

    struct SimNode;  // one node: defined in the .cpp

  private:
    std::string exec(const std::vector<std::string>& args);
    std::string deliver(raft::NodeId only, bool quiet);
    std::string stabilize();
    SimNode* node(const std::string& arg);

    std::map<raft::NodeId, std::unique_ptr<SimNode>> nodes_;
    std::deque<raft::Message> queue_;
    std::set<raft::NodeId> isolated_;  // messages to or from these are lost
    std::string out_;
    bool quiet_ = false;

    friend struct SimNode;
};

}  // namespace raftd::daemon::testing
