// NodeBackend: the daemon's implementation of ipc::Backend, turning client requests into
// raft::Node calls and Ready results back into replies.
//
// Owns: the proposals, reads, membership changes and leader transfers waiting on raft, the
// proposals this follower forwarded to the leader, and a cache of the configuration each
// config entry establishes (for the commit stream).
// Never: reply to a proposal before its entry is committed and durable locally, or report a
// proposal as not appended when it may still commit (INDETERMINATE then).
//
// Thread rules: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>

#include "daemon/host.h"
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
    void propose(raft::Payload data, ipc::Done<ipc::ProposeReply> done) override;
    void read_index(ipc::Done<ipc::ReadIndexReply> done) override;
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

    // The membership as clients see it (progress included on the leader when asked).
    ipc::Membership membership(const raft::ConfState& cs, bool with_progress) const;

  private:
    void propose_local(raft::Payload data, ipc::Done<ipc::ProposeReply> done);
    ipc::Error not_leader_error(std::string what) const;
    void expire();
    void forward(raft::Payload data, ipc::Done<ipc::ProposeReply> done);
    // Sends a client request (membership, transfer) to the leader; `done` gets the leader's
    // reply map body, or an error.
    void forward_op(const ipc::Request& req, std::function<void(ipc::Outcome<std::string>)> done,
                    raft::NodeId transfer_to = raft::kNoNode);
    void serve_forwarded_op(raft::NodeId from, uint64_t seq, std::string_view body);
    void on_forward(raft::NodeId from, Forward&& f);
    void fail_forwards(raft::NodeId leader, const std::string& why);
    Result<ipc::Membership> config_at(const raft::Entry& e);

    struct PendingProposal {
        raft::EntryId id;
        ipc::Done<ipc::ProposeReply> done;
    };
    struct PendingRead {
        uint64_t deadline;
        ipc::Done<ipc::ReadIndexReply> done;
    };
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
    std::deque<PendingProposal> proposals_;  // ascending index
    // Set when this node stopped leading with proposals outstanding: they resolve when their
    // index commits, or become INDETERMINATE at this deadline (the new leader's log may never
    // reach their index).
    uint64_t orphan_deadline_ = 0;
    bool was_leader_ = false;
    std::map<std::string, PendingRead> reads_;
    uint64_t next_read_ = 1;
    std::optional<PendingConf> conf_;
    std::vector<PendingTransfer> transfers_;
    raft::NodeId last_leader_ = raft::kNoNode;
    // Proposals this follower forwarded to the leader, by sequence number.
    struct PendingForward {
        raft::NodeId leader;
        uint64_t deadline;
        ipc::Done<ipc::ProposeReply> done;  // a proposal, or:
        std::function<void(ipc::Outcome<std::string>)> op_done;  // a forwarded request
        raft::NodeId transfer_to = raft::kNoNode;  // a transfer succeeds when this node leads
    };
    std::map<uint64_t, PendingForward> forwards_;
    uint64_t next_forward_ = 1;
    // True while an application snapshot upload is open (shared with the upload, which may
    // outlive this backend's view of it).
    std::shared_ptr<bool> upload_busy_ = std::make_shared<bool>(false);
    // Configuration established by each config entry seen (index -> conf).
    std::map<raft::Index, raft::ConfState> conf_cache_;
    std::function<void(raft::Index)> notify_commit_;
    std::function<void(ipc::LeaderHint)> notify_leader_;
};

}  // namespace raftd::daemon
