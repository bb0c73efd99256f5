// The raftd command line: one flag per option of the config table, plus --config and the
// printing actions, folded into a Config (defaults < file < flags).
//
// Owns: turning argv into an Invocation. CLI11 throws; nothing escapes this module: usage and
// config mistakes come back as a Status whose message is the one line raftd prints.
// Never: start anything, open the data dir, or print (the caller prints `output`).
//
// Thread rules: call from main before anything else runs.
#pragma once

#include <string>

#include "daemon/config.h"
#include "raft/status.h"

namespace raftd::daemon {

inline constexpr const char* kRaftdVersion = "0.1.0";

struct Invocation {
    enum class Action {
        kRun,          // start the daemon with `config`
        kPrint,        // print `output` and exit 0 (--help, --version, the renderers)
        kCheckConfig,  // the configuration is valid: say so and exit 0
    };
    Action action = Action::kRun;
    Config config;
    std::string config_path;  // empty when no --config was given
    std::string output;
};

// Parses argv. Errors (unknown flag, bad value, bad config file, failed validation) are
// InvalidArgument with a message fit for "raftd: error: <message>".
Result<Invocation> parse_command_line(int argc, const char* const* argv);

}  // namespace raftd::daemon
