// Message: everything one raft node says to another, as plain values.
//
// Owns: the message vocabulary and which fields each type uses (docs/raft.md, "Messages").
// Never: pointers, callbacks or anything the daemon could not serialize field by field; a
// Message is copied into msgpack by daemon/ and must mean the same thing on the other side.
// Thread rules: plain data; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"

namespace raftd::raft {

// Wire values are fixed: daemon/ sends them as integers.
enum class MessageType : uint8_t {
    kPreVote = 1,  // term = the term the sender would campaign for; index/log_term = last entry
    kPreVoteResponse = 2,  // reject; term = the request's term when granted, else ours;
                           // when rejecting, commit/log_term = our commit index and its term
    kVote = 3,          // like kPreVote, term already incremented; transfer = forced by TimeoutNow
    kVoteResponse = 4,  // reject; commit/log_term as for kPreVoteResponse
    kAppend = 5,        // index/log_term = previous entry; entries; commit
    kAppendResponse = 6,  // index = last matching index, or the rejected previous index if reject;
                          // reject_hint/log_term = where the sender's log may match (reject only)
    kHeartbeat = 7,       // commit (already clamped to the receiver's match); round
    kHeartbeatResponse = 8,   // round echoed
    kSnapshot = 9,            // one InstallSnapshot chunk: snapshot, offset, data, done
    kSnapshotResponse = 10,   // index = snapshot index; offset = next offset wanted; reject
    kTimeoutNow = 11,         // leader transfer: campaign now, skipping pre-vote and the lease
    kReadIndex = 12,          // a follower forwards a read: context; lease
    kReadIndexResponse = 13,  // index = read index, context; reject = the leader cannot serve it
};
constexpr uint8_t kMaxMessageType = 13;

std::string_view message_type_name(MessageType t);

struct Message {
    MessageType type = MessageType::kAppend;
    NodeId from = kNoNode;
    NodeId to = kNoNode;
    Term term = 0;
    Term log_term = 0;
    Index index = 0;
    Index commit = 0;
    std::vector<Entry> entries;
    bool reject = false;
    Index reject_hint = 0;
    // Heartbeat round (leader-local sequence number): a response to round r proves the sender
    // still followed this leader after every read registered at rounds <= r.
    uint64_t round = 0;
    bool transfer = false;
    // kAppend without entries to a follower known to hold `index`: only the commit index is
    // news, and a successful answer would tell the leader nothing, so none is sent.
    bool quiet = false;
    // kReadIndex: the reader accepts an answer from the leader's lease (Config::lease_read);
    // false: the leader confirms the read with a heartbeat round.
    bool lease = false;
    std::string context;
    // kSnapshot only.
    SnapshotMeta snapshot;
    uint64_t offset = 0;
    std::string data;
    bool done = false;

    friend bool operator==(const Message&, const Message&) = default;
};

// Whether a response to the given request type.
bool is_response(MessageType t);

// One line, for traces and test output: "1->2 Append t3 prev=2/5 commit=4 [3/6 3/7]".
std::string describe(const Message& m);
std::string describe(const Entry& e);

}  // namespace raftd::raft
