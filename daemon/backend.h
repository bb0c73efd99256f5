// NodeBackend: the daemon's implementation of ipc::Backend, turning client requests into
// raft::Node calls and Ready results back into replies. The rooms it is built from:
// pending.h (requests waiting on their entry), forward.h (the follower's side of forwarded
// requests), membership.h (membership requests as ConfChanges), commit_stream.h (the
// subscribers' read-ahead) and snapshot_upload.h.
//
// Owns: wiring those to the host and transport; the reads and leader transfers waiting on
// raft; the membership change between its commit and its taking effect; the leader's side
// of forwarded requests.
// Never: reply to a proposal before its entry is committed and durable locally, or report a
// proposal as not appended when it may still commit (INDETERMINATE then).
//
// Thread rules: loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "daemon/commit_stream.h"
#include "daemon/forward.h"
#include "daemon/host.h"
#include "daemon/pending.h"
#include "ipc/backend.h"
#include "ipc/uv.h"

namespace raftd::daemon {

class NodeBackend final : public ipc::Backend {
  public:
    explicit NodeBackend(NodeHost& host);
    ~NodeBackend() override;
    Status start();

    // Wiring from the host and the server.
    void on_committed(const std::vector<raft::Entry>& ents);
    void on_snapshot_installed(const raft::SnapshotMeta& snap);
    void on_read_states(const std::vector<raft::ReadState>& rs);
    void on_applied();  // after advance(): the configuration may have changed
    void on_role_changed();
    void on_stopping();
    // The server to notify of commits and leader changes (may be null).
    void set_notify(std::function<void(raft::Index)> commit,
                    std::function<void(ipc::LeaderHint)> leader) {
        notify_commit_ = std::move(commit);
        notify_leader_ = std::move(leader);
    }

    // ipc::Backend
    ipc::NodeInfo info() const override;
    ipc::StatusReply status() const override;
    ipc::Membership members() const override;
    raft::NodeId leader() const override;
    void propose(raft::Payload data, ipc::Done<ipc::ProposeReply> done) override;
    void read_index(bool lease, ipc::Done<ipc::ReadIndexReply> done) override;
    void change_members(ipc::MemberChange change, ipc::Done<ipc::Membership> done) override;
    void transfer_leader(raft::NodeId to, ipc::Done<ipc::TransferLeaderReply> done) override;
    void campaign(ipc::Done<ipc::CampaignReply> done) override;
    ipc::Outcome<std::unique_ptr<ipc::SnapshotWriter>> begin_snapshot(raft::Index index) override;
    raft::Index first_index() const override;
    raft::Index commit_index() const override;
    Result<std::vector<ipc::StreamEntry>> read_entries(raft::Index from,
                                                       uint64_t max_bytes) override;
    ipc::SnapshotInfo latest_snapshot() const override;
    Result<raft::SnapshotBytes> read_snapshot(raft::Index index, uint64_t offset,
                                              uint64_t max_bytes) override;

  private:
    void propose_local(raft::Payload data, ipc::Done<ipc::ProposeReply> done);
    ipc::Error not_leader_error(std::string what) const;
    uint64_t deadline() const;  // for a request starting to wait now
    void expire();
    // The leader's side of a forwarded proposal or client request.
    void on_forward(raft::NodeId from, Forward&& f);
    void serve_forwarded_request(raft::NodeId from, uint64_t seq, std::string_view body);

    struct PendingRead {
        uint64_t deadline;
        ipc::Done<ipc::ReadIndexReply> done;
        std::chrono::steady_clock::time_point started;  // for the read_index histogram
    };
    // The one membership change in flight: waiting in pending_ for its entry until
    // `committed`, then until the configuration takes effect (on_applied).
    struct PendingConf {
        raft::EntryId id;
        bool committed = false;
        bool wait_leave_joint = false;
        uint64_t deadline = 0;
        ipc::Done<ipc::Membership> done;
    };
    struct PendingTransfer {
        raft::NodeId to;
        uint64_t deadline;
        ipc::Done<ipc::TransferLeaderReply> done;
    };

    NodeHost& host_;
    ipc::uv::Timer timer_;
    PendingTable pending_;
    Forwarder forwarder_;
    CommitReader commits_;
    std::map<std::string, PendingRead> reads_;
    uint64_t next_read_ = 1;
    std::optional<PendingConf> conf_;
    std::vector<PendingTransfer> transfers_;
    raft::NodeId last_leader_ = raft::kNoNode;
    // True while an application snapshot upload is open (shared with the upload, which may
    // outlive this backend's view of it).
    std::shared_ptr<bool> upload_busy_ = std::make_shared<bool>(false);
    std::function<void(raft::Index)> notify_commit_;
    std::function<void(ipc::LeaderHint)> notify_leader_;
};

}  // namespace raftd::daemon
