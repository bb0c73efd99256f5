#include "raft/status.h"

namespace raftd {

std::string_view code_name(Code c) {
    switch (c) {
        case Code::kOk:
            return "OK";
        case Code::kInvalidArgument:
            return "InvalidArgument";
        case Code::kNotFound:
            return "NotFound";
        case Code::kCompacted:
            return "Compacted";
        case Code::kCorruption:
            return "Corruption";
        case Code::kIoError:
            return "IoError";
        case Code::kNotLeader:
            return "NotLeader";
        case Code::kBusy:
            return "Busy";
        case Code::kUnavailable:
            return "Unavailable";
        case Code::kTimeout:
            return "Timeout";
        case Code::kAborted:
            return "Aborted";
        case Code::kInternal:
            return "Internal";
    }
    return "Unknown";
}

std::string Status::to_string() const {
    if (is_ok()) return "OK";
    std::string s(code_name(code_));
    if (!msg_.empty()) {
        s += ": ";
        s += msg_;
    }
    return s;
}

}  // namespace raftd
