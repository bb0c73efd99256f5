#include "raft/status.h"

#include "raft/enum_name.h"

namespace raftd {

constexpr EnumName<Code> kCodeNames[] = {
    {Code::kOk, "OK"},
    {Code::kInvalidArgument, "InvalidArgument"},
    {Code::kNotFound, "NotFound"},
    {Code::kCompacted, "Compacted"},
    {Code::kCorruption, "Corruption"},
    {Code::kIoError, "IoError"},
    {Code::kNotLeader, "NotLeader"},
    {Code::kBusy, "Busy"},
    {Code::kUnavailable, "Unavailable"},
    {Code::kTimeout, "Timeout"},
    {Code::kAborted, "Aborted"},
    {Code::kInternal, "Internal"},
};

std::string_view code_name(Code c) {
    return enum_name(c, kCodeNames, "Unknown");
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
