// The node side of the client protocol: see backend.h.
#include "daemon/backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "daemon/cli.h"
#include "daemon/membership.h"
#include "daemon/metrics.h"
#include "daemon/snapshot_upload.h"
#include "raft/confchange.h"

namespace raftd::daemon {

namespace {
using ipc::Error;
using ipc::ErrorCode;

constexpr uint64_t kExpireEveryMs = 100;
using Clock = std::chrono::steady_clock;

// Counts a proposal this node answers (docs/metrics.md: raftd_proposals_total and its
// latency), then answers it.
void answer_proposal(ipc::Done<ipc::ProposeReply>& done, ipc::Outcome<ipc::ProposeReply> r,
                     Clock::time_point t0) {
    metrics().proposal_done(r.ok() ? std::nullopt : std::optional(r.error().code), t0);
    done(std::move(r));
}

std::string wire_role(raft::Role r) {
    switch (r) {
        case raft::Role::kLeader:
            return "leader";
        case raft::Role::kFollower:
            return "follower";
        case raft::Role::kCandidate:
            return "candidate";
        case raft::Role::kPreCandidate:
            return "pre_candidate";
    }
    return "follower";
}

}  // namespace

NodeBackend::NodeBackend(NodeHost& host)
    : host_(host),
      forwarder_([&host](raft::NodeId to, const Forward& f) {
          return host.transport().send_forward(to, f);
      }),
      commits_(host.store().storage()) {}

NodeBackend::~NodeBackend() {
    on_stopping();
}

Status NodeBackend::start() {
    // A node may lead already (a single-node cluster elects itself before clients are
    // served): role_changed() only reports changes from here on.
    last_leader_ = host_.node().leader();
    Status st = timer_.init(host_.loop());
    if (st) st = timer_.start(kExpireEveryMs, kExpireEveryMs, [this] { expire(); });
    auto& ev = host_.events();
    ev.committed = [this](const std::vector<raft::Entry>& e) { on_committed(e); };
    ev.snapshot_installed = [this](const raft::SnapshotMeta& s) { on_snapshot_installed(s); };
    ev.read_states = [this](const std::vector<raft::ReadState>& r) { on_read_states(r); };
    ev.applied = [this] { on_applied(); };
    ev.role_changed = [this] { on_role_changed(); };
    ev.stopping = [this] { on_stopping(); };
    host_.transport().set_forward_handler(
        [this](raft::NodeId from, Forward&& f) { on_forward(from, std::move(f)); });
    host_.transport().set_peer_down_handler([this](raft::NodeId id) {
        forwarder_.peer_down(
            id, "the connection to the leader was lost while the request was forwarded");
    });
    return st;
}

// How long a request waiting on raft may wait: a few election timeouts.
uint64_t NodeBackend::deadline() const {
    const Config& c = host_.config();
    return uv_now(host_.loop()) + std::max<uint64_t>(5000, 4 * c.election_ticks * c.tick_ms);
}

ipc::Error NodeBackend::not_leader_error(std::string what) const {
    Error e{ErrorCode::kUnavailable, std::move(what), std::nullopt};
    raft::NodeId l = host_.node().leader();
    if (l != raft::kNoNode)
        e.leader = ipc::LeaderHint{l, raft::address_of(host_.node().conf_state(), l)};
    return e;
}

// ---- facts ------------------------------------------------------------------------------

ipc::NodeInfo NodeBackend::info() const {
    return {host_.config().node_id, host_.config().cluster, kRaftdVersion};
}

ipc::StatusReply NodeBackend::status() const {
    const raft::Node& n = host_.node();
    const raft::NodeStatus ns = n.status();
    ipc::StatusReply r;
    r.node_id = host_.config().node_id;
    r.cluster = host_.config().cluster;
    r.role = wire_role(n.role());
    r.term = n.term();
    r.leader = n.leader();
    r.commit = host_.delivered();
    const auto& s = host_.store().storage();
    r.first_index = s.first_index();
    r.last_index = std::max(s.last_index(), ns.last_index);
    r.snapshot_index = s.snapshot_meta().index;
    r.wal_syncs = host_.store().syncs();
    r.membership = to_membership(n.conf_state(), n.role() == raft::Role::kLeader ? &ns : nullptr);
    r.version = kRaftdVersion;
    return r;
}

ipc::Membership NodeBackend::members() const {
    return to_membership(host_.node().conf_state());
}

raft::NodeId NodeBackend::leader() const {
    // Known only once on_role_changed() has caught up with raft: a request forwarded to a
    // leader that raft knows but the forwarder does not yet would be given up by the
    // forwarder's leader_changed() a moment later (INDETERMINATE for a proposal that was
    // about to be served). Until then requests wait; the server drains them when told.
    const raft::NodeId l = host_.node().leader();
    return l == last_leader_ ? l : raft::kNoNode;
}

// ---- proposals --------------------------------------------------------------------------

void NodeBackend::propose(raft::Payload data, ipc::Done<ipc::ProposeReply> done) {
    if (host_.stopping()) {
        answer_proposal(done,
                        Error{ErrorCode::kShuttingDown,
                              "raftd is stopping; the entry was not appended", std::nullopt},
                        Clock::now());
        return;
    }
    raft::Node& n = host_.node();
    if (n.role() != raft::Role::kLeader && n.leader() != raft::kNoNode) {
        // docs/peer-protocol.md, "Forwarded requests": one ordered channel per follower/leader
        // pair, never retried, so proposals of one client connection reach the log in the
        // order they were made.
        const raft::NodeId leader = n.leader();
        forwarder_.propose(
            leader, std::move(data), deadline(), std::move(done),
            not_leader_error("cannot reach the leader (node " + std::to_string(leader) +
                             "); the entry was not appended"));
        return;
    }
    propose_local(std::move(data), std::move(done));
}

void NodeBackend::propose_local(raft::Payload data, ipc::Done<ipc::ProposeReply> done) {
    const Clock::time_point t0 = Clock::now();
    auto id = host_.node().propose(std::move(data));
    if (!id) {
        const Status& st = id.status();
        if (st.code() == Code::kBusy)
            answer_proposal(done, Error{ErrorCode::kBusy, st.message(), std::nullopt}, t0);
        else
            answer_proposal(done, not_leader_error("no leader to append to: " + st.message()), t0);
        return;
    }
    // The table's callback must be copyable; Done is move-only. The start time rides in the
    // same allocation: no extra one per proposal for the latency histogram.
    struct Waiting {
        ipc::Done<ipc::ProposeReply> done;
        Clock::time_point t0;
    };
    auto w = std::make_shared<Waiting>(Waiting{std::move(done), t0});
    pending_.add(*id,
                 [w](const Resolution& r) { answer_proposal(w->done, proposal_reply(r), w->t0); });
    host_.kick();
}

void NodeBackend::on_committed(const std::vector<raft::Entry>& ents) {
    for (const raft::Entry& e : ents)
        pending_.committed({e.index, e.term});
    if (notify_commit_ && !ents.empty()) notify_commit_(ents.back().index);
}

void NodeBackend::on_snapshot_installed(const raft::SnapshotMeta& snap) {
    pending_.snapshot_installed({snap.index, snap.term});
}

// ---- the leader's side of forwarded requests ------------------------------------------

void NodeBackend::on_forward(raft::NodeId from, Forward&& f) {
    if (f.kind == Forward::Kind::kResult) {
        forwarder_.on_result(from, f);
        return;
    }
    if (f.kind == Forward::Kind::kOp) {
        serve_forwarded_request(from, f.seq, f.data.view());
        return;
    }
    const uint64_t seq = f.seq;
    ipc::Done<ipc::ProposeReply> done{[this, from, seq](ipc::Outcome<ipc::ProposeReply> r) {
        if (!host_.transport().send_forward(from, propose_result_frame(seq, r)))
            spdlog::debug("forwarded proposal {} from node {}: result dropped", seq, from);
    }};
    if (host_.stopping()) {
        done(Error{ErrorCode::kShuttingDown, "the leader is stopping; the entry was not appended",
                   std::nullopt});
        return;
    }
    // Never forwarded again: a leader that just lost its role answers UNAVAILABLE.
    if (host_.node().role() != raft::Role::kLeader) {
        done(not_leader_error("node " + std::to_string(host_.config().node_id) +
                              " is no longer the leader; the entry was not appended"));
        return;
    }
    propose_local(std::move(f.data), std::move(done));
}

// Runs a forwarded client request as if a local client had sent it and sends the reply map
// back.
void NodeBackend::serve_forwarded_request(raft::NodeId from, uint64_t seq, std::string_view body) {
    auto send_result = [this, from, seq](const ipc::Outcome<std::string>& r) {
        if (!host_.transport().send_forward(from, request_result_frame(seq, r)))
            spdlog::debug("forwarded request {} from node {}: result dropped", seq, from);
    };
    auto req = parse_forwarded_request(body);
    if (!req.ok()) {
        send_result(req.error());
        return;
    }
    if (host_.node().role() != raft::Role::kLeader) {
        send_result(not_leader_error("node " + std::to_string(host_.config().node_id) +
                                     " is no longer the leader"));
        return;
    }
    auto relay = [send_result](const auto& r) {
        if (r.ok())
            send_result(reply_body(r.value()));
        else
            send_result(r.error());
    };
    if (auto* t = std::get_if<ipc::TransferLeaderRequest>(&req.value()))
        transfer_leader(t->to, ipc::Done<ipc::TransferLeaderReply>{relay});
    else
        change_members(std::get<ipc::MemberChange>(std::move(req.value())),
                       ipc::Done<ipc::Membership>{relay});
}

// ---- reads ------------------------------------------------------------------------------

void NodeBackend::read_index(bool lease, ipc::Done<ipc::ReadIndexReply> done) {
    if (host_.stopping()) {
        done(Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt});
        return;
    }
    std::string ctx(8, '\0');
    uint64_t n = next_read_++;
    std::memcpy(ctx.data(), &n, sizeof n);
    // A lease read only where the client asked for one: raft's lease_read is the node's
    // permission, the request's `lease` the client's choice (docs/protocol.md 6.5).
    if (Status st = host_.node().read_index(ctx, lease); !st) {
        done(not_leader_error("read_index: " + st.message()));
        return;
    }
    reads_.emplace(ctx, PendingRead{deadline(), std::move(done), Clock::now()});
    host_.kick();
}

void NodeBackend::on_read_states(const std::vector<raft::ReadState>& rs) {
    for (const auto& r : rs) {
        auto it = reads_.find(r.context);
        if (it == reads_.end()) continue;  // timed out already
        metrics().read_index_seconds.observe_since(it->second.started);
        it->second.done(ipc::ReadIndexReply{r.index});
        reads_.erase(it);
    }
}

// ---- membership and leadership ----------------------------------------------------------

void NodeBackend::change_members(ipc::MemberChange change, ipc::Done<ipc::Membership> done) {
    raft::Node& n = host_.node();
    if (n.role() != raft::Role::kLeader) {
        const raft::NodeId leader = n.leader();
        if (leader == raft::kNoNode) {
            done(not_leader_error("no leader to make the change"));
            return;
        }
        ipc::Request req = std::visit([](auto&& r) -> ipc::Request { return r; }, change);
        auto d = std::make_shared<ipc::Done<ipc::Membership>>(std::move(done));
        forwarder_.request(
            leader, req, deadline(),
            [d](ipc::Outcome<std::string> r) {
                if (!r.ok()) return (*d)(r.error());
                auto m = parse_membership_reply(r.value());
                if (!m)
                    return (*d)(Error{ErrorCode::kInternal, m.status().message(), std::nullopt});
                (*d)(std::move(m).value());
            },
            not_leader_error("cannot reach the leader (node " + std::to_string(leader) + ")"));
        return;
    }
    if (conf_) {
        done(Error{ErrorCode::kBusy, "another membership change is in progress", std::nullopt});
        return;
    }
    auto plan = plan_member_change(n.conf_state(), change);
    if (!plan) {
        done(plan.error());
        return;
    }
    const raft::ConfChange& cc = plan.value().change;
    auto id = n.propose_conf_change(cc);
    if (!id) {
        const Status& st = id.status();
        if (st.code() == Code::kBusy)
            done(Error{ErrorCode::kBusy, st.message(), std::nullopt});
        else if (st.code() == Code::kNotLeader)
            done(not_leader_error(st.message()));
        else
            done(Error{ErrorCode::kBadRequest, st.message(), std::nullopt});
        return;
    }
    spdlog::info("membership change proposed: {}", raft::describe(cc));
    PendingConf pc;
    pc.id = *id;
    pc.wait_leave_joint = plan.value().wait_leave_joint;
    pc.deadline = deadline();
    pc.done = std::move(done);
    conf_ = std::move(pc);
    // Its entry waits in the pending table like a proposal; once committed, on_applied
    // answers when the configuration has taken effect. Until then a lost change is
    // UNAVAILABLE and one of unknown fate TIMEOUT (docs/protocol.md 5).
    pending_.add(
        *id,
        [this](const Resolution& r) {
            if (!conf_ || !(conf_->id == r.id)) return;
            if (r.fate == Fate::kCommitted) {
                conf_->committed = true;
                return;
            }
            const ErrorCode code = r.fate == Fate::kNotCommitted ? ErrorCode::kUnavailable
                                   : r.stopping                  ? ErrorCode::kShuttingDown
                                                                 : ErrorCode::kTimeout;
            conf_->done(Error{code, r.why, std::nullopt});
            conf_.reset();
        },
        pc.deadline, "the change was not applied in time; it may still be");
    host_.kick();
}

void NodeBackend::on_applied() {
    if (conf_ && conf_->committed) {
        const raft::ConfState& cs = host_.node().conf_state();
        if (!conf_->wait_leave_joint || !cs.joint()) {
            conf_->done(to_membership(cs));
            conf_.reset();
        }
    }
}

void NodeBackend::transfer_leader(raft::NodeId to, ipc::Done<ipc::TransferLeaderReply> done) {
    raft::Node& n = host_.node();
    if (n.leader() == to && to != raft::kNoNode) {
        done(ipc::TransferLeaderReply{to});
        return;
    }
    if (n.role() != raft::Role::kLeader && n.leader() != raft::kNoNode) {
        const raft::NodeId leader = n.leader();
        auto d = std::make_shared<ipc::Done<ipc::TransferLeaderReply>>(std::move(done));
        forwarder_.request(
            leader, ipc::TransferLeaderRequest{to}, deadline(),
            [d](ipc::Outcome<std::string> r) {
                if (!r.ok()) return (*d)(r.error());
                auto f = ipc::decode_frame_body(r.value());
                auto l = f ? ipc::find_uint(f->root(), "leader") : std::nullopt;
                if (!l)
                    return (*d)(Error{ErrorCode::kInternal, "bad transfer reply from the leader",
                                      std::nullopt});
                (*d)(ipc::TransferLeaderReply{*l});
            },
            not_leader_error("cannot reach the leader (node " + std::to_string(leader) + ")"), to);
        return;
    }
    if (Status st = n.transfer_leader(to); !st) {
        if (st.code() == Code::kNotLeader)
            done(not_leader_error(st.message()));
        else
            done(Error{ErrorCode::kBadRequest, st.message(), std::nullopt});
        return;
    }
    transfers_.push_back({to, deadline(), std::move(done)});
    host_.kick();
}

void NodeBackend::campaign(ipc::Done<ipc::CampaignReply> done) {
    if (Status st = host_.node().campaign(); !st) {
        done(Error{ErrorCode::kBadRequest, st.message(), std::nullopt});
        return;
    }
    host_.kick();
    done(ipc::CampaignReply{host_.node().term()});
}

void NodeBackend::on_role_changed() {
    raft::Node& n = host_.node();
    const raft::NodeId l = n.leader();
    const bool leader = n.role() == raft::Role::kLeader;
    // Entries proposed in a term this node no longer leads are decided by another leader's
    // log, which may never reach their index: they wait a deadline, then are INDETERMINATE.
    // Those of the term it leads now wait without one (a leader commits its own entries or
    // steps down).
    pending_.orphan(leader ? n.term() : std::numeric_limits<raft::Term>::max(), deadline(),
                    "this node lost leadership before the entry committed; it may still commit");
    for (auto it = transfers_.begin(); it != transfers_.end();) {
        if (l == it->to) {
            it->done(ipc::TransferLeaderReply{l});
            it = transfers_.erase(it);
        } else {
            ++it;
        }
    }
    if (l != last_leader_) {
        last_leader_ = l;
        forwarder_.leader_changed(l);
        if (notify_leader_)
            notify_leader_(ipc::LeaderHint{l, l ? raft::address_of(n.conf_state(), l) : ""});
    }
}

void NodeBackend::expire() {
    const uint64_t now = uv_now(host_.loop());
    pending_.expire(now);
    for (auto it = reads_.begin(); it != reads_.end();) {
        if (it->second.deadline <= now) {
            metrics().read_index_seconds.observe_since(it->second.started);
            it->second.done(
                Error{ErrorCode::kTimeout, "leadership was not confirmed in time", std::nullopt});
            it = reads_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = transfers_.begin(); it != transfers_.end();) {
        if (it->deadline <= now) {
            it->done(Error{ErrorCode::kTimeout,
                           "node " + std::to_string(it->to) + " did not take over in time",
                           std::nullopt});
            it = transfers_.erase(it);
        } else {
            ++it;
        }
    }
    // A committed change still waiting to take effect (before its commit, pending_ times it).
    if (conf_ && conf_->committed && conf_->deadline <= now) {
        conf_->done(Error{ErrorCode::kTimeout,
                          "the change was not applied in time; it may still be", std::nullopt});
        conf_.reset();
    }
    forwarder_.expire(now);
}

void NodeBackend::on_stopping() {
    pending_.fail_all("raftd is stopping; the entry may still commit");
    Error e{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt};
    for (auto& [k, r] : reads_)
        r.done(e);
    reads_.clear();
    if (conf_) conf_->done(e);  // committed, waiting to take effect
    conf_.reset();
    for (auto& t : transfers_)
        t.done(e);
    transfers_.clear();
    forwarder_.stop(e);
    timer_.close();
}

// ---- the commit stream and snapshots ----------------------------------------------------

raft::Index NodeBackend::first_index() const {
    return host_.store().storage().first_index();
}

raft::Index NodeBackend::commit_index() const {
    return host_.delivered();
}

Result<std::vector<ipc::StreamEntry>> NodeBackend::read_entries(raft::Index from,
                                                                uint64_t max_bytes) {
    return commits_.read(from, commit_index(), max_bytes);
}

ipc::SnapshotInfo NodeBackend::latest_snapshot() const {
    raft::SnapshotMeta m = host_.store().storage().snapshot_meta();
    return {m.index, m.term, to_membership(m.conf)};
}

Result<raft::SnapshotBytes> NodeBackend::read_snapshot(raft::Index index, uint64_t offset,
                                                       uint64_t max_bytes) {
    const raft::SnapshotSource* src = host_.store().snapshots();
    if (!src) return Status::not_found("no snapshot");
    return src->read_snapshot(index, offset, max_bytes);
}

ipc::Outcome<std::unique_ptr<ipc::SnapshotWriter>> NodeBackend::begin_snapshot(raft::Index index) {
    // Every error this returns is listed in docs/protocol.md (`snapshot`).
    if (host_.stopping()) return Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt};
    if (index > commit_index())
        return Error{ErrorCode::kBadRequest,
                     "index " + std::to_string(index) + " is above the commit index " +
                         std::to_string(commit_index()),
                     std::nullopt};
    // Already covered (an application replaying its stream from the start re-uploads a
    // snapshot the node has): harmless, answered with the covering snapshot's index.
    if (index <= host_.store().storage().snapshot_meta().index) return start_covered_upload(host_);
    if (*upload_busy_)
        return Error{ErrorCode::kBusy, "another snapshot upload is in progress", std::nullopt};
    // Any index up to commit_index() was delivered on the commit stream, and raft accepts
    // it even while the Ready that handed it out is still being persisted.
    auto meta = host_.node().snapshot_meta(index);
    if (!meta) return Error{ErrorCode::kNotFound, meta.status().message(), std::nullopt};
    return start_snapshot_upload(host_, std::move(meta).value(), upload_busy_);
}

}  // namespace raftd::daemon
