// Ready: everything the state machine wants done, handed to the caller as one bundle, and the
// small value types it is made of.
//
// Owns: plain data only. The order in which a caller must act on a Ready is the persistence
// contract of docs/raft.md: send `messages`; write `snapshot_chunks`, install `snapshot`,
// append `entries` (truncating first when entries[0].index is not after the last stored
// index), then persist `hard_state` (entries before hard state, or atomically); once all of
// it is durable send `persisted_messages`; hand `committed_entries` and `read_states` to the
// application; then call Node::advance().
// Never: references into raft's state; a Ready stays valid after advance().
// Thread rules: plain data.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "raft/message.h"
#include "raft/types.h"

namespace raftd::raft {

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view role_name(Role r);

// Volatile state worth telling the caller about when it changes (who leads, our role).
struct SoftState {
    NodeId leader = kNoNode;
    Role role = Role::kFollower;
    friend bool operator==(const SoftState&, const SoftState&) = default;
};

// A linearizable read may be served once the application has applied `index`.
struct ReadState {
    Index index = 0;
    std::string context;
    friend bool operator==(const ReadState&, const ReadState&) = default;
};

// A piece of a snapshot arriving from the leader, to be written to a staging area. offset 0
// starts a new staging area (discard any previous one); `done` marks the last piece, and the
// same Ready then carries `snapshot` to install what was staged.
struct SnapshotChunk {
    SnapshotMeta meta;
    uint64_t offset = 0;
    std::string data;
    bool done = false;
};

// Where a proposal landed. It is committed when an entry with this index *and* term is
// delivered; if index is delivered with another term, the proposal was lost.
struct EntryId {
    Index index = 0;
    Term term = 0;
    friend bool operator==(const EntryId&, const EntryId&) = default;
};

struct Ready {
    std::optional<SoftState> soft_state;
    std::optional<HardState> hard_state;   // persist when set
    std::vector<Entry> entries;            // append; may overwrite a suffix
    std::optional<SnapshotMeta> snapshot;  // install the staged snapshot with this metadata
    std::vector<SnapshotChunk> snapshot_chunks;
    std::vector<Message> messages;            // may be sent at once
    std::vector<Message> persisted_messages;  // only after everything above is durable
    std::vector<Entry> committed_entries;     // durable and committed: deliver in order
    std::vector<ReadState> read_states;

    // Whether anything must be made durable before persisted_messages go out.
    bool must_persist() const {
        return hard_state || snapshot || !entries.empty() || !snapshot_chunks.empty();
    }
};

}  // namespace raftd::raft
