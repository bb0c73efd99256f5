#include "raft/message.h"

#include <string>

#include "raft/enum_name.h"

namespace raftd::raft {

constexpr EnumName<MessageType> kMessageTypeNames[] = {
    {MessageType::kPreVote, "PreVote"},
    {MessageType::kPreVoteResponse, "PreVoteResponse"},
    {MessageType::kVote, "Vote"},
    {MessageType::kVoteResponse, "VoteResponse"},
    {MessageType::kAppend, "Append"},
    {MessageType::kAppendResponse, "AppendResponse"},
    {MessageType::kHeartbeat, "Heartbeat"},
    {MessageType::kHeartbeatResponse, "HeartbeatResponse"},
    {MessageType::kSnapshot, "Snapshot"},
    {MessageType::kSnapshotResponse, "SnapshotResponse"},
    {MessageType::kTimeoutNow, "TimeoutNow"},
    {MessageType::kReadIndex, "ReadIndex"},
    {MessageType::kReadIndexResponse, "ReadIndexResponse"},
};

std::string_view message_type_name(MessageType t) {
    return enum_name(t, kMessageTypeNames, "Unknown");
}

bool is_response(MessageType t) {
    switch (t) {
        case MessageType::kPreVoteResponse:
        case MessageType::kVoteResponse:
        case MessageType::kAppendResponse:
        case MessageType::kHeartbeatResponse:
        case MessageType::kSnapshotResponse:
        case MessageType::kReadIndexResponse:
            return true;
        default:
            return false;
    }
}

namespace {

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += c;
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
            out += hex[static_cast<unsigned char>(c) & 0xf];
        }
    }
    return out;
}

}  // namespace

std::string describe(const Entry& e) {
    std::string s = std::to_string(e.term) + "/" + std::to_string(e.index);
    switch (e.type) {
        case EntryType::kData:
            s += " \"" + printable(e.data.view()) + "\"";
            break;
        case EntryType::kNoop:
            s += " noop";
            break;
        case EntryType::kConfig:
            s += " config";
            break;
    }
    return s;
}

std::string describe(const Message& m) {
    std::string s = std::to_string(m.from) + "->" + std::to_string(m.to) + " " +
                    std::string(message_type_name(m.type)) + " t" + std::to_string(m.term);
    auto add = [&s](const std::string& part) { s += " " + part; };
    switch (m.type) {
        case MessageType::kPreVote:
        case MessageType::kVote:
            add("last=" + std::to_string(m.log_term) + "/" + std::to_string(m.index));
            if (m.transfer) add("transfer");
            break;
        case MessageType::kPreVoteResponse:
        case MessageType::kVoteResponse:
            add(m.reject ? "reject" : "grant");
            if (m.reject && m.commit > 0) {
                add("commit=" + std::to_string(m.log_term) + "/" + std::to_string(m.commit));
            }
            break;
        case MessageType::kAppend: {
            add("prev=" + std::to_string(m.log_term) + "/" + std::to_string(m.index));
            add("commit=" + std::to_string(m.commit));
            std::string ents = "[";
            for (size_t i = 0; i < m.entries.size(); ++i) {
                if (i) ents += ", ";
                ents += describe(m.entries[i]);
            }
            add(ents + "]");
            if (m.quiet) add("quiet");
            break;
        }
        case MessageType::kAppendResponse:
            if (m.reject) {
                add("reject index=" + std::to_string(m.index) +
                    " hint=" + std::to_string(m.log_term) + "/" + std::to_string(m.reject_hint));
            } else {
                add("index=" + std::to_string(m.index));
            }
            break;
        case MessageType::kHeartbeat:
            add("commit=" + std::to_string(m.commit) + " round=" + std::to_string(m.round));
            break;
        case MessageType::kHeartbeatResponse:
            add("round=" + std::to_string(m.round));
            break;
        case MessageType::kSnapshot:
            add("snap=" + std::to_string(m.snapshot.term) + "/" + std::to_string(m.snapshot.index) +
                " offset=" + std::to_string(m.offset) + " bytes=" + std::to_string(m.data.size()) +
                (m.done ? " done" : ""));
            break;
        case MessageType::kSnapshotResponse:
            add("snap=" + std::to_string(m.index) + " offset=" + std::to_string(m.offset) +
                (m.reject ? " reject" : ""));
            break;
        case MessageType::kTimeoutNow:
            break;
        case MessageType::kReadIndex:
            add("ctx=\"" + printable(m.context) + "\"");
            break;
        case MessageType::kReadIndexResponse:
            add("index=" + std::to_string(m.index) + " ctx=\"" + printable(m.context) + "\"" +
                (m.reject ? " reject" : ""));
            break;
    }
    return s;
}

}  // namespace raftd::raft
