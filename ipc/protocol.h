// The client protocol's messages (docs/protocol.md): typed requests parsed and validated
// from decoded frames, and encoders for replies, errors and stream events.
//
// Owns: the mapping between wire maps and these structs, and the error vocabulary. A
// request's `data` is copied exactly once, from the frame into its raft::Payload.
// Never: decide anything about Raft, or accept a field of the wrong type: every field is
// checked and a wrong one is a BAD_REQUEST naming it. Unknown fields are ignored, so newer
// clients can talk to older servers.
//
// Thread rules: pure functions and values; use from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ipc/frame.h"
#include "raft/types.h"

namespace raftd::ipc {

constexpr uint64_t kProtocolVersion = 1;
constexpr uint32_t kDefaultMaxEntry = 1u << 20;

// Stable wire strings: "BAD_FRAME", "BAD_REQUEST", ...
enum class ErrorCode {
    kBadFrame,
    kBadRequest,
    kUnknownOp,
    kTooLarge,
    kUnavailable,
    kIndeterminate,
    kBusy,
    kTimeout,
    kNotFound,
    kShuttingDown,
    kInternal,
};
std::string_view error_code_name(ErrorCode c);
std::optional<ErrorCode> error_code_from_name(std::string_view s);

struct LeaderHint {
    raft::NodeId node = raft::kNoNode;
    std::string addr;  // the leader's peer address, "host:port"; may be empty
    friend bool operator==(const LeaderHint&, const LeaderHint&) = default;
};

struct Error {
    ErrorCode code = ErrorCode::kInternal;
    std::string message;
    std::optional<LeaderHint> leader;
    friend bool operator==(const Error&, const Error&) = default;
};

// ---- requests -----------------------------------------------------------------------------

struct HelloRequest {
    uint64_t version = kProtocolVersion;
    std::optional<std::string> name;
};
struct PingRequest {};
struct ProposeRequest {
    raft::Payload data;
};
struct SubscribeRequest {
    std::optional<raft::Index> from;  // absent: the index after the current commit index
};
struct UnsubscribeRequest {
    uint64_t sub = 0;  // the subscribe request's id
};
struct ReadIndexRequest {};
struct SnapshotRequest {
    raft::Index index = 0;
    uint64_t offset = 0;
    raft::Payload data;
    bool done = false;
};
struct StatusRequest {};
struct MembersRequest {};
struct AddMemberRequest {
    raft::NodeId node = raft::kNoNode;
    std::string addr;
    bool learner = false;
};
struct RemoveMemberRequest {
    raft::NodeId node = raft::kNoNode;
};
struct PromoteRequest {
    raft::NodeId node = raft::kNoNode;
};
struct DemoteRequest {
    raft::NodeId node = raft::kNoNode;
};
struct MemberSpec {
    raft::NodeId node = raft::kNoNode;
    std::string addr;
    bool learner = false;
};
struct ChangeMembersRequest {
    std::vector<MemberSpec> add;
    std::vector<raft::NodeId> remove;
};
struct TransferLeaderRequest {
    raft::NodeId to = raft::kNoNode;
};
struct CampaignRequest {};

using Request =
    std::variant<HelloRequest, PingRequest, ProposeRequest, SubscribeRequest, UnsubscribeRequest,
                 ReadIndexRequest, SnapshotRequest, StatusRequest, MembersRequest, AddMemberRequest,
                 RemoveMemberRequest, PromoteRequest, DemoteRequest, ChangeMembersRequest,
                 TransferLeaderRequest, CampaignRequest>;

// The wire name of a request's op ("propose", ...).
std::string_view op_name(const Request& r);

struct ParseLimits {
    uint32_t max_entry = kDefaultMaxEntry;  // largest propose data / snapshot chunk
};

// The outcome of parsing one frame as a request. `id` is set whenever the frame's "id" was a
// valid unsigned integer, so errors can echo it.
struct Parsed {
    std::optional<uint64_t> id;
    std::optional<Request> request;  // set on success
    Error error;                     // meaningful when !request
    bool ok() const { return request.has_value(); }
};
Parsed parse_request(const Frame& frame, const ParseLimits& limits = {});

// ---- replies and events -------------------------------------------------------------------

struct Progress {  // a peer's replication progress, as the leader tracks it
    raft::Index match = 0;
    raft::Index next = 0;
    std::string state;  // "probe" | "replicate" | "snapshot"
    friend bool operator==(const Progress&, const Progress&) = default;
};

struct MemberInfo {
    raft::NodeId node = raft::kNoNode;
    std::string addr;
    bool voter = false;     // a voter of the (incoming) configuration; false: a learner
    bool outgoing = false;  // a voter of the outgoing configuration (encoded while joint only)
    std::optional<Progress> progress;  // status replies on the leader only
    friend bool operator==(const MemberInfo&, const MemberInfo&) = default;
};

struct Membership {
    std::vector<MemberInfo> members;
    bool joint = false;
    friend bool operator==(const Membership&, const Membership&) = default;
};

struct OkReply {};  // ping, subscribe, unsubscribe: just {"id", "ok": true}
struct HelloReply {
    uint64_t version = kProtocolVersion;
    raft::NodeId node_id = raft::kNoNode;
    std::string cluster;
    uint32_t max_frame = kDefaultMaxFrame;
    uint32_t max_entry = kDefaultMaxEntry;
};
struct ProposeReply {
    raft::Index index = 0;
    raft::Term term = 0;
};
struct ReadIndexReply {
    raft::Index index = 0;
};
struct SnapshotReply {
    std::optional<raft::Index> index;  // set on the reply to the final chunk
};
struct StatusReply {
    raft::NodeId node_id = raft::kNoNode;
    std::string cluster;
    std::string role;  // "leader" | "follower" | "candidate" | "pre_candidate"
    raft::Term term = 0;
    raft::NodeId leader = raft::kNoNode;
    raft::Index commit = 0;
    raft::Index first_index = 0;
    raft::Index last_index = 0;
    raft::Index snapshot_index = 0;
    uint64_t wal_syncs = 0;  // fsync-family calls of the WAL and metadata since start
    Membership membership;   // encoded as "members" and "joint"
    std::string version;     // raftd's version string
};
using MembersReply = Membership;
struct TransferLeaderReply {
    raft::NodeId leader = raft::kNoNode;
};
struct CampaignReply {
    raft::Term term = 0;
};

void encode_reply(OutBuffer& out, uint64_t id, const OkReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const HelloReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const ProposeReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const ReadIndexReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const SnapshotReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const StatusReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const Membership& r);
void encode_reply(OutBuffer& out, uint64_t id, const TransferLeaderReply& r);
void encode_reply(OutBuffer& out, uint64_t id, const CampaignReply& r);
// An error reply; `id` absent is encoded as nil (the request's id could not be read).
void encode_error(OutBuffer& out, std::optional<uint64_t> id, const Error& e);

// {"ev":"entry", "id":sub, "index", "term", "type", "data"[, "members", "joint"]}. `config`
// is the configuration a config entry establishes (required for kConfig, else ignored).
void encode_entry_event(OutBuffer& out, uint64_t sub, const raft::Entry& e,
                        const Membership* config);

struct SnapshotChunk {
    raft::Index index = 0;
    raft::Term term = 0;
    uint64_t offset = 0;
    raft::Payload data;
    bool done = false;
    Membership membership;
};
void encode_snapshot_event(OutBuffer& out, uint64_t sub, const SnapshotChunk& c);
// {"ev":"end", "id":sub, "error":{...}}: the server ended the subscription.
void encode_end_event(OutBuffer& out, uint64_t sub, const Error& why);

// Requests, for clients and tests: {"op", "id", fields...}.
void encode_request(OutBuffer& out, uint64_t id, const Request& r);

}  // namespace raftd::ipc
