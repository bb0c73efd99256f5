// The vocabulary shared by raft/, wal/ and daemon/: log entries, hard state, membership
// configuration and snapshot metadata.
//
// Owns: plain value types and the refcounted Payload that carries an entry's bytes.
// Never: I/O, or any behaviour beyond small helpers. These types cross every module
// boundary, so they stay boring.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace raftd::raft {

using NodeId = uint64_t;
using Term = uint64_t;
using Index = uint64_t;
constexpr NodeId kNoNode = 0;  // node ids start at 1; 0 means "none" (no vote, no leader)

// An entry's bytes, shared and immutable. One proposal's payload is allocated once when it
// leaves the client socket and then only referenced by the raft log, the WAL batch, the
// entry cache and every subscriber: copying an Entry never copies its data.
class Payload {
  public:
    Payload() = default;
    explicit Payload(std::string bytes)
        : p_(bytes.empty() ? nullptr : std::make_shared<const std::string>(std::move(bytes))) {}
    Payload(const char* s, size_t n) : Payload(std::string(s, n)) {}

    std::string_view view() const { return p_ ? std::string_view(*p_) : std::string_view(); }
    const char* data() const { return p_ ? p_->data() : ""; }
    size_t size() const { return p_ ? p_->size() : 0; }
    bool empty() const { return size() == 0; }
    friend bool operator==(const Payload& a, const Payload& b) { return a.view() == b.view(); }

  private:
    std::shared_ptr<const std::string> p_;
};

// Wire and disk values are fixed: they are written to the WAL (docs/wal-format.md) and
// shown to clients as "data" | "noop" | "config" (docs/protocol.md).
enum class EntryType : uint8_t {
    kData = 1,    // an application proposal; raftd never interprets it
    kNoop = 2,    // the empty entry a new leader appends to commit its predecessors' entries
    kConfig = 3,  // a membership change; data holds an encoded ConfChange
};

// A data entry's exactly-once key (docs/protocol.md, "Exactly-once proposals"): the client
// session and sequence number its proposal carried, or zeros. raft carries it with the
// entry and never reads it; the daemon derives its session table from committed keys.
struct SessionKey {
    uint64_t client = 0;  // 0: the proposal carried no key
    uint64_t seq = 0;
    bool empty() const { return client == 0; }
    friend bool operator==(const SessionKey&, const SessionKey&) = default;
};

struct Entry {
    Index index = 0;
    Term term = 0;
    EntryType type = EntryType::kData;
    Payload data;
    SessionKey session = {};  // kData only

    // Approximate memory/wire cost, used for byte limits (inflight, max append size).
    size_t byte_size() const { return data.size() + 24; }
    friend bool operator==(const Entry&, const Entry&) = default;
};

// What must be durable before any message that depends on it leaves the node
// (docs/raft.md, "Persistence contract").
struct HardState {
    Term term = 0;
    NodeId vote = kNoNode;
    Index commit = 0;
    friend bool operator==(const HardState&, const HardState&) = default;
    bool empty() const { return term == 0 && vote == kNoNode && commit == 0; }
};

// One member as the operator sees it: id and the peer address other nodes dial.
struct Member {
    NodeId id = kNoNode;
    std::string addr;  // "host:port" of the peer transport
    friend bool operator==(const Member&, const Member&) = default;
};

// The membership configuration. In a joint configuration `voters_outgoing` is non-empty and
// decisions need a majority of both `voters` and `voters_outgoing` (Raft thesis 4.3).
struct ConfState {
    std::vector<NodeId> voters;
    std::vector<NodeId> learners;
    std::vector<NodeId> voters_outgoing;  // non-empty only while joint
    std::vector<NodeId> learners_next;    // voters demoted to learners when the joint state is left
    bool auto_leave = false;              // leave the joint state as soon as it is committed
    std::vector<Member> addrs;            // peer address of every node named above
    friend bool operator==(const ConfState&, const ConfState&) = default;
    bool joint() const { return !voters_outgoing.empty(); }
};

struct SnapshotMeta {
    Index index = 0;  // last index covered by the snapshot; 0 = no snapshot
    Term term = 0;
    ConfState conf;
    friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

}  // namespace raftd::raft
