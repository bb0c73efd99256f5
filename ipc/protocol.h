// The client protocol's messages (docs/protocol.md): typed requests parsed and validated
// from decoded frames, encoders for requests, replies, errors and stream events, and the
// decoders of replies and events that every C++ user of the protocol shares (the C++
// client, raftbench, and the daemon reading replies forwarded from the leader).
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
#include "raft/status.h"
#include "raft/types.h"
#include "raftd/error_codes.h"

namespace raftd::ipc {

constexpr uint64_t kProtocolVersion = 1;
constexpr uint32_t kDefaultMaxEntry = 1u << 20;

// Stable wire strings: "BAD_FRAME", "BAD_REQUEST", ... The list is shared with the C++
// client's public header (raftd/error_codes.h), which cannot include ipc/.
enum class ErrorCode {
#define RAFTD_IPC_CODE(name, wire) name,
    RAFTD_PROTOCOL_ERROR_CODES(RAFTD_IPC_CODE)
#undef RAFTD_IPC_CODE
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
struct ReadIndexRequest {
    bool lease = false;  // may be served from the leader's lease (docs/protocol.md 6.5)
};
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
    // How long a request that needs a leader waits for one (docs/protocol.md 6.7); absent:
    // the server's default. Read for those requests only (waits_for_leader()).
    std::optional<uint64_t> timeout_ms;
    Error error;  // meaningful when !request
    bool ok() const { return request.has_value(); }
};
Parsed parse_request(const Frame& frame, const ParseLimits& limits = {});
// propose, read_index, the membership operations and transfer_leader: they need a leader
// and wait for one while none is known.
bool waits_for_leader(const Request& r);

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

// ---- decoding replies and events (protocol_decode.cpp) ------------------------------------
// Read as docs/protocol.md asks of clients: unknown fields are ignored and a missing or
// mistyped scalar reads as zero/empty/false, so a reply from an older or newer server still
// decodes. Only a shape that leaves a reply meaningless is an error (decode_membership).
// str fields also accept bin, and bin fields str. Values borrow nothing unless they say so.

// `key` as an unsigned integer, or nullopt when absent or of another type.
std::optional<uint64_t> find_uint(const msgpack::object& map, std::string_view key);

// What every server frame starts with: a reply to request `id`, or an event of subscription
// `id` ("ev" present). `id` is nullopt for nil (an error to a request whose id was unreadable).
struct ReplyHead {
    std::optional<uint64_t> id;
    bool event = false;
    bool ok = false;  // replies: "ok": true
};
ReplyHead decode_reply_head(const msgpack::object& frame_root);

// The error of a reply with "ok": false or of an end event: its "error" map. An unknown code
// decodes as kInternal; `wire_code`, when given, receives the code string as sent. A missing
// error map is an INTERNAL error saying so.
Error decode_error(const msgpack::object& reply, std::string* wire_code = nullptr);

// "members" (an array of maps, required) and "joint" of a membership or status reply, a
// config entry event or a snapshot chunk.
Result<Membership> decode_membership(const msgpack::object& reply);

HelloReply decode_hello_reply(const msgpack::object& reply);
ProposeReply decode_propose_reply(const msgpack::object& reply);
Result<StatusReply> decode_status_reply(const msgpack::object& reply);

// One stream event: {"ev": "entry" | "snapshot" | "end", ...}.
struct Event {
    enum class Kind { kEntry, kSnapshot, kEnd };
    Kind kind = Kind::kEntry;
    uint64_t sub = 0;
    raft::Index index = 0;
    raft::Term term = 0;
    std::string type;                      // entries: "data" | "noop" | "config"
    std::string_view data;                 // borrows the frame it was decoded from
    uint64_t offset = 0;                   // snapshot chunks
    bool done = false;                     // snapshot chunks: the last one
    std::optional<Membership> membership;  // config entries and snapshot chunks
    std::optional<Error> error;            // kEnd: why the server ended the subscription
    std::string error_code;                // kEnd: the code string as sent
};
Result<Event> decode_event(const msgpack::object& frame_root);

}  // namespace raftd::ipc
