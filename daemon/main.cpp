// raftd's entry point: parse the command line, then hand over to the daemon. Every startup
// failure ends here as one line on stderr and a non-zero exit status.
#include <cstdio>

#include "daemon/cli.h"
#include "daemon/host.h"

int main(int argc, char** argv) {
    using raftd::daemon::Invocation;
    auto inv = raftd::daemon::parse_command_line(argc, argv);
    if (!inv) {
        std::fprintf(stderr, "raftd: error: %s\n", inv.status().message().c_str());
        return 2;
    }
    switch (inv->action) {
        case Invocation::Action::kPrint:
            std::fputs(inv->output.c_str(), stdout);
            return 0;
        case Invocation::Action::kCheckConfig:
            for (const auto& w : inv->config.warnings)
                std::fprintf(stderr, "raftd: warning: %s\n", w.c_str());
            std::printf("raftd: configuration is valid\n");
            return 0;
        case Invocation::Action::kRun:
            break;
    }
    return raftd::daemon::run_daemon(inv->config);
}
