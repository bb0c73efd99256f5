// Forwarding (docs/peer-protocol.md, "Forwarded requests"): a follower hands a client's
// proposal, membership change or leader transfer to the leader it knows, and the leader's
// result comes back to the client.
//
// Owns: the follower's table of requests waiting on the leader, with one give-up path
// (connection lost, another leader, deadline); the Forward result frames both sides build
// and read (`*_result_frame`, `*_result`).
// Never: send a request twice or retry one (a retry could commit a proposal twice); answer a
// proposal UNAVAILABLE once its frame was queued (it may have been appended: INDETERMINATE),
// or weaken the leader's answer (its UNAVAILABLE and INDETERMINATE reach the client as sent).
//
// Thread rules: no I/O or clock of its own: frames leave through the `Send` function and
// times are passed in. The daemon uses it on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "daemon/peer_codec.h"
#include "ipc/backend.h"

namespace raftd::daemon {

class Forwarder {
  public:
    // Queues a frame to a peer; false: it could not be queued (nothing left this node).
    using Send = std::function<bool(raft::NodeId, const Forward&)>;
    // The leader's reply map to a forwarded client request (its frame body), or an error.
    using RequestDone = std::function<void(ipc::Outcome<std::string>)>;

    explicit Forwarder(Send send) : send_(std::move(send)) {}

    // Forwards a proposal to `leader`; `done` gets the leader's answer, or `unsent` at once
    // when the frame cannot be queued. Given up on (INDETERMINATE) at `deadline`.
    void propose(raft::NodeId leader, raft::Payload data, raft::SessionKey key, uint64_t deadline,
                 ipc::Done<ipc::ProposeReply> done, ipc::Error unsent);
    // Forwards a client request (membership change, transfer). A transfer names its target
    // in `transfer_to`: it succeeds when that node leads, whatever the old leader answers.
    void request(raft::NodeId leader, const ipc::Request& req, uint64_t deadline, RequestDone done,
                 ipc::Error unsent, raft::NodeId transfer_to = raft::kNoNode);

    // A result frame from `from`; one for a request given up on, or from another node than
    // the one it went to, is ignored.
    void on_result(raft::NodeId from, const Forward& f);
    // The leader this node knows changed to `leader` (kNoNode: none). Every request is given
    // up on (it may or may not have taken effect), except a transfer: it has succeeded when
    // its target leads, and waits through the leaderless moment it causes itself.
    void leader_changed(raft::NodeId leader);
    // The connection to `peer` failed: what was sent to it is given up on.
    void peer_down(raft::NodeId peer, const std::string& why);
    void expire(uint64_t now);
    // Answers everything with `e` (the node is stopping).
    void stop(const ipc::Error& e);

    size_t size() const { return pending_.size(); }

  private:
    struct Pending {
        raft::NodeId leader = raft::kNoNode;
        uint64_t deadline = 0;
        ipc::Done<ipc::ProposeReply> propose;  // a proposal, or:
        RequestDone request;                   // a forwarded client request
        raft::NodeId transfer_to = raft::kNoNode;
    };
    // The one give-up path: the request may or may not have taken effect on the leader.
    // Sends a Forward of `kind` carrying `data` to `leader` under a fresh sequence number and
    // returns the entry that awaits its result (the caller sets its callback); nullptr when it
    // could not be sent, and then nothing waits.
    Pending* send(raft::NodeId leader, Forward::Kind kind, raft::Payload data, uint64_t deadline,
                  raft::SessionKey key = {});
    static void give_up(Pending& p, const std::string& why);

    Send send_;
    std::map<uint64_t, Pending> pending_;
    uint64_t next_seq_ = 1;
};

// The result frame a leader sends for forwarded proposal `seq`, and what the follower makes
// of one: an error code it does not know becomes INDETERMINATE (the proposal may commit).
Forward propose_result_frame(uint64_t seq, const ipc::Outcome<ipc::ProposeReply>& r);
ipc::Outcome<ipc::ProposeReply> propose_result(const Forward& f);
// The same for a forwarded client request; its success carries the reply map's body. An
// unknown code becomes TIMEOUT (it may still take effect).
Forward request_result_frame(uint64_t seq, const ipc::Outcome<std::string>& r);
ipc::Outcome<std::string> request_result(const Forward& f);
// What a leader runs for a forwarded client request (a `data` of kind 3): a leader
// transfer or a membership change; BAD_REQUEST for anything else.
using ForwardedRequest = std::variant<ipc::TransferLeaderRequest, ipc::MemberChange>;
ipc::Outcome<ForwardedRequest> parse_forwarded_request(std::string_view body);
// A reply as a frame body (no header), what a request result carries.
template <typename Reply>
std::string reply_body(const Reply& r) {
    ipc::OutBuffer out;
    ipc::encode_reply(out, 0, r);
    return out.flatten().substr(ipc::kFrameHeaderSize);
}

}  // namespace raftd::daemon
