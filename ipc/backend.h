// Backend: what the client server (ipc/server.h) needs from the node it serves. The daemon
// implements it over raft + wal; ipc tests implement it in memory.
//
// Owns: nothing; an interface plus the small value/callback types it is written in.
// Never: the server never makes a Raft decision, and a Backend never touches a socket. All
// results are values: ipc::Error for failures (its code is the wire code the client sees),
// never exceptions.
//
// Thread rules: every method is called on the loop thread, and every Done<T> MUST be
// invoked on the loop thread. A Done<T> may be invoked from inside the call that received it
// (synchronous completion is fine) or any time later.
//
// Callback contract (Done<T>): invoke it exactly once. It is move-only; if it is destroyed
// without being invoked (a backend bug, or a backend torn down with requests in flight) it
// answers the request itself with INTERNAL "request dropped", so a client never waits
// forever. Invoking it after the client's connection has closed is harmless: the reply is
// dropped. Invoking it after the Server was destroyed is harmless too.
#pragma once

#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ipc/protocol.h"
#include "raft/snapshot_source.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raftd::ipc {

// A value or the wire error explaining its absence.
template <typename T>
class Outcome {
  public:
    Outcome(T value) : v_(std::move(value)) {}      // NOLINT: implicit on purpose
    Outcome(Error error) : v_(std::move(error)) {}  // NOLINT
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const {
        assert(ok());
        return std::get<0>(v_);
    }
    const Error& error() const {
        assert(!ok());
        return std::get<1>(v_);
    }

  private:
    std::variant<T, Error> v_;
};

// For operations whose success carries nothing.
struct Unit {};

// A move-only, call-once completion. See the callback contract above.
template <typename T>
class Done {
  public:
    Done() = default;
    explicit Done(std::function<void(Outcome<T>)> fn) : fn_(std::move(fn)) {}
    Done(Done&& o) noexcept : fn_(std::exchange(o.fn_, nullptr)) {}
    Done& operator=(Done&& o) noexcept {
        if (this != &o) {
            drop();
            fn_ = std::exchange(o.fn_, nullptr);
        }
        return *this;
    }
    Done(const Done&) = delete;
    Done& operator=(const Done&) = delete;
    ~Done() { drop(); }

    // Delivers the outcome; later calls do nothing.
    void operator()(Outcome<T> result) {
        if (auto fn = std::exchange(fn_, nullptr)) fn(std::move(result));
    }
    explicit operator bool() const { return fn_ != nullptr; }

  private:
    void drop() {
        if (auto fn = std::exchange(fn_, nullptr))
            fn(Error{ErrorCode::kInternal, "request dropped by the server", std::nullopt});
    }
    std::function<void(Outcome<T>)> fn_;
};

// What hello and status report about this node that never changes while it runs.
struct NodeInfo {
    raft::NodeId node_id = raft::kNoNode;
    std::string cluster;
    std::string version;  // raftd's version string
};

// One committed entry as a subscriber sees it.
struct StreamEntry {
    raft::Entry entry;
    // For EntryType::kConfig: the configuration this entry establishes. Must be set for
    // config entries (the server reports INTERNAL and ends the stream otherwise).
    std::optional<Membership> config;
};

// The latest durable snapshot.
struct SnapshotInfo {
    raft::Index index = 0;  // 0: there is none
    raft::Term term = 0;
    Membership membership;  // the configuration as of `index`
};

// One upload of an application snapshot (the `snapshot` op). The server creates one with
// Backend::begin_snapshot() on a chunk with offset 0 and feeds it that upload's chunks in
// order. The writer must process write()s and finish() in call order (it may queue them; it
// may reply before the bytes are durable, except for finish()).
class SnapshotWriter {
  public:
    virtual ~SnapshotWriter() = default;
    // Appends the next chunk (its offset is the number of bytes written before it).
    virtual void write(raft::Payload chunk, Done<Unit> done) = 0;
    // Ends the upload with one last (possibly empty) chunk; `done` once the snapshot is
    // durable and is the node's latest, with the snapshot's index.
    virtual void finish(raft::Payload last_chunk, Done<raft::Index> done) = 0;
    // The upload is abandoned (a new one started, or the connection closed): discard it.
    // No done of this writer is invoked after abort() returns except those already owed,
    // which may complete with any outcome. Destroying an unfinished writer also aborts.
    virtual void abort() = 0;
};

// Membership operations, as parsed from the wire (they validate field types only).
using MemberChange = std::variant<AddMemberRequest, RemoveMemberRequest, PromoteRequest,
                                  DemoteRequest, ChangeMembersRequest>;

class Backend {
  public:
    virtual ~Backend() = default;

    // ---- facts answered at once ----------------------------------------------------------
    virtual NodeInfo info() const = 0;
    // The whole `status` reply (node_id, cluster, version included).
    virtual StatusReply status() const = 0;
    virtual Membership members() const = 0;
    // The leader this node knows (kNoNode: none). Requests that need one wait while there is
    // none (ipc/leader_wait.h); the server asks again when on_leader_change() is called.
    virtual raft::NodeId leader() const = 0;

    // ---- operations that complete later ------------------------------------------------
    // Appends `data` as one data entry; done once this node knows it committed. Calls made
    // in order must reach the log in that order (docs/protocol.md 6.2): a follower forwards
    // them to the leader over one ordered channel and never retries. Errors:
    // UNAVAILABLE (definitely not appended), INDETERMINATE (may commit), BUSY, SHUTTING_DOWN.
    virtual void propose(raft::Payload data, Done<ProposeReply> done) = 0;
    // ReadIndex (Raft thesis 6.4), forwarded to the leader on a follower. done with the read
    // index once leadership was confirmed by a quorum, or with `lease` from the leader's
    // lease while it holds one (then without a heartbeat round; a node not configured for
    // lease reads confirms by a quorum anyway). Errors: UNAVAILABLE, TIMEOUT.
    virtual void read_index(bool lease, Done<ReadIndexReply> done) = 0;
    // One membership change; done with the configuration once the change is applied (for
    // change_members: once the joint configuration was entered and left; for demote: once
    // the voter is a learner). Errors: BAD_REQUEST, BUSY, UNAVAILABLE, TIMEOUT, NOT_FOUND.
    virtual void change_members(MemberChange change, Done<Membership> done) = 0;
    // done with `to` once it leads; TIMEOUT otherwise.
    virtual void transfer_leader(raft::NodeId to, Done<TransferLeaderReply> done) = 0;
    // Starts an election on this node; done with its campaign term.
    virtual void campaign(Done<CampaignReply> done) = 0;
    // Starts a snapshot upload covering the log through `index`. An index the latest
    // snapshot already covers is accepted: its writer drops the bytes and finish() answers
    // the covering snapshot's index. Errors as Outcome (docs/protocol.md, `snapshot`):
    // BAD_REQUEST (index above commit_index()), BUSY (another upload is being finished),
    // NOT_FOUND (the term or configuration at `index` is unknown), SHUTTING_DOWN.
    virtual Outcome<std::unique_ptr<SnapshotWriter>> begin_snapshot(raft::Index index) = 0;

    // ---- the commit stream ---------------------------------------------------------------
    // The first index still in the log (the latest snapshot's index + 1 once compacted).
    virtual raft::Index first_index() const = 0;
    // The highest index that is both committed and durable on this node's disk: the stream
    // never goes beyond it. Server::on_commit() announces increases.
    virtual raft::Index commit_index() const = 0;
    // Entries [from, ...] up to commit_index(), stopping once their sizes would exceed
    // max_bytes (at least one entry when from <= commit_index()). Errors (raftd::Status):
    // kCompacted when from < first_index(); kNotFound when from > commit_index(); others
    // (kIoError ...) end the subscription with INTERNAL.
    virtual Result<std::vector<StreamEntry>> read_entries(raft::Index from, uint64_t max_bytes) = 0;
    // The latest durable snapshot (index 0 when there is none).
    virtual SnapshotInfo latest_snapshot() const = 0;
    // Up to max_bytes of snapshot `index` from `offset`. kNotFound when `index` is no longer
    // the latest snapshot (the server then starts over with the new one).
    virtual Result<raft::SnapshotBytes> read_snapshot(raft::Index index, uint64_t offset,
                                                      uint64_t max_bytes) = 0;
};

}  // namespace raftd::ipc
