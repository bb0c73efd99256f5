// The node side of the client protocol: see backend.h.
#include "daemon/backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "daemon/cli.h"
#include "raft/confchange.h"
#include "raft/confchange_codec.h"

namespace raftd::daemon {

namespace {
using ipc::Error;
using ipc::ErrorCode;

constexpr uint64_t kExpireEveryMs = 100;

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

bool contains(const std::vector<raft::NodeId>& v, raft::NodeId id) {
    return std::find(v.begin(), v.end(), id) != v.end();
}

// A `members` reply map (docs/protocol.md 4) back into a Membership.
Result<ipc::Membership> parse_membership_reply(std::string_view body) {
    auto f = ipc::decode_frame_body(body);
    if (!f) return f.status();
    const msgpack::object* ms = f->find("members");
    const msgpack::object* joint = f->find("joint");
    if (!ms || ms->type != msgpack::type::ARRAY)
        return Status::invalid_argument("reply without members");
    ipc::Membership m;
    if (joint && joint->type == msgpack::type::BOOLEAN) m.joint = joint->via.boolean;
    for (uint32_t i = 0; i < ms->via.array.size; ++i) {
        const msgpack::object& o = ms->via.array.ptr[i];
        if (o.type != msgpack::type::MAP) return Status::invalid_argument("bad member in reply");
        ipc::MemberInfo mi;
        for (uint32_t j = 0; j < o.via.map.size; ++j) {
            const auto& kv = o.via.map.ptr[j];
            if (kv.key.type != msgpack::type::STR) continue;
            std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
            if (k == "node" && kv.val.type == msgpack::type::POSITIVE_INTEGER)
                mi.node = kv.val.via.u64;
            else if (k == "addr" && kv.val.type == msgpack::type::STR)
                mi.addr.assign(kv.val.via.str.ptr, kv.val.via.str.size);
            else if (k == "voter" && kv.val.type == msgpack::type::BOOLEAN)
                mi.voter = kv.val.via.boolean;
            else if (k == "outgoing" && kv.val.type == msgpack::type::BOOLEAN)
                mi.outgoing = kv.val.via.boolean;
        }
        m.members.push_back(std::move(mi));
    }
    return m;
}

}  // namespace

NodeBackend::NodeBackend(NodeHost& host) : host_(host) {}

NodeBackend::~NodeBackend() {
    on_stopping();
}

Status NodeBackend::start() {
    Status st = timer_.init(host_.loop());
    if (st) st = timer_.start(kExpireEveryMs, kExpireEveryMs, [this] { expire(); });
    auto& ev = host_.events();
    ev.committed = [this](const std::vector<raft::Entry>& e) { on_committed(e); };
    ev.read_states = [this](const std::vector<raft::ReadState>& r) { on_read_states(r); };
    ev.applied = [this] { on_applied(); };
    ev.role_changed = [this] { on_role_changed(); };
    ev.stopping = [this] { on_stopping(); };
    host_.transport().set_forward_handler(
        [this](raft::NodeId from, Forward&& f) { on_forward(from, std::move(f)); });
    host_.transport().set_peer_down_handler([this](raft::NodeId id) {
        fail_forwards(id, "the connection to the leader was lost while the proposal was forwarded");
    });
    return st;
}

// How long a request waiting on raft may wait: a few election timeouts.
static uint64_t wait_ms(const Config& c) {
    return std::max<uint64_t>(5000, 4 * c.election_ticks * c.tick_ms);
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

ipc::Membership NodeBackend::membership(const raft::ConfState& cs, bool with_progress) const {
    ipc::Membership m;
    m.joint = cs.joint();
    raft::NodeStatus st;
    if (with_progress) st = host_.node().status();
    for (raft::NodeId id : raft::all_members(cs)) {
        ipc::MemberInfo mi;
        mi.node = id;
        mi.addr = raft::address_of(cs, id);
        mi.voter = contains(cs.voters, id);
        mi.outgoing = contains(cs.voters_outgoing, id);
        if (with_progress) {
            auto it = st.progress.find(id);
            if (it != st.progress.end())
                mi.progress =
                    ipc::Progress{it->second.match, it->second.next,
                                  std::string(raft::progress_state_name(it->second.state))};
        }
        m.members.push_back(std::move(mi));
    }
    return m;
}

ipc::StatusReply NodeBackend::status() const {
    const raft::Node& n = host_.node();
    ipc::StatusReply r;
    r.node_id = host_.config().node_id;
    r.cluster = host_.config().cluster;
    r.role = wire_role(n.role());
    r.term = n.term();
    r.leader = n.leader();
    r.commit = host_.delivered();
    const auto& s = host_.store().storage();
    r.first_index = s.first_index();
    r.last_index = std::max(s.last_index(), n.status().last_index);
    r.snapshot_index = s.snapshot_meta().index;
    r.wal_syncs = host_.store().syncs();
    r.membership = membership(n.conf_state(), n.role() == raft::Role::kLeader);
    r.version = kRaftdVersion;
    return r;
}

ipc::Membership NodeBackend::members() const {
    return membership(host_.node().conf_state(), false);
}

// ---- proposals --------------------------------------------------------------------------

void NodeBackend::propose(raft::Payload data, ipc::Done<ipc::ProposeReply> done) {
    if (host_.stopping()) {
        done(Error{ErrorCode::kShuttingDown, "raftd is stopping; the entry was not appended",
                   std::nullopt});
        return;
    }
    raft::Node& n = host_.node();
    if (n.role() != raft::Role::kLeader && n.leader() != raft::kNoNode) {
        forward(std::move(data), std::move(done));
        return;
    }
    propose_local(std::move(data), std::move(done));
}

void NodeBackend::propose_local(raft::Payload data, ipc::Done<ipc::ProposeReply> done) {
    auto id = host_.node().propose(std::move(data));
    if (!id) {
        const Status& st = id.status();
        if (st.code() == Code::kBusy)
            done(Error{ErrorCode::kBusy, st.message(), std::nullopt});
        else
            done(not_leader_error("no leader to append to: " + st.message()));
        return;
    }
    proposals_.push_back({*id, std::move(done)});
    host_.kick();
}

void NodeBackend::on_committed(const std::vector<raft::Entry>& ents) {
    for (const raft::Entry& e : ents) {
        while (!proposals_.empty() && proposals_.front().id.index <= e.index) {
            PendingProposal& p = proposals_.front();
            if (p.id.index == e.index && p.id.term == e.term) {
                p.done(ipc::ProposeReply{e.index, e.term});
            } else {
                // Another leader's entry took this index: ours can never commit.
                p.done(Error{ErrorCode::kUnavailable,
                             "the entry was replaced by a new leader's log and will not commit",
                             std::nullopt});
            }
            proposals_.pop_front();
        }
        if (e.type == raft::EntryType::kConfig && conf_ && conf_->id.index == e.index) {
            if (conf_->id.term != e.term) {
                conf_->done(Error{ErrorCode::kUnavailable,
                                  "the change was replaced by a new leader's log", std::nullopt});
                conf_.reset();
            } else {
                conf_->committed = true;
            }
        }
    }
    if (notify_commit_ && !ents.empty()) notify_commit_(ents.back().index);
}

// Forwarding (docs/peer-protocol.md, "Forwarded proposals"): one ordered channel per
// follower/leader pair, never retried, so proposals of one client connection reach the log
// in the order they were made.
void NodeBackend::forward(raft::Payload data, ipc::Done<ipc::ProposeReply> done) {
    const raft::NodeId leader = host_.node().leader();
    Forward f;
    f.kind = Forward::Kind::kPropose;
    f.seq = next_forward_++;
    f.data = std::move(data);
    if (!host_.transport().send_forward(leader, f)) {
        done(not_leader_error("cannot reach the leader (node " + std::to_string(leader) +
                              "); the entry was not appended"));
        return;
    }
    forwards_.emplace(f.seq, PendingForward{leader, uv_now(host_.loop()) + wait_ms(host_.config()),
                                            std::move(done), nullptr, raft::kNoNode});
}

void NodeBackend::on_forward(raft::NodeId from, Forward&& f) {
    if (f.kind == Forward::Kind::kPropose) {
        const uint64_t seq = f.seq;
        auto reply = [this, from, seq](ipc::Outcome<ipc::ProposeReply> r) {
            Forward res;
            res.kind = Forward::Kind::kResult;
            res.seq = seq;
            res.ok = r.ok();
            if (r.ok()) {
                res.index = r.value().index;
                res.term = r.value().term;
            } else {
                res.code = std::string(ipc::error_code_name(r.error().code));
                res.message = r.error().message;
            }
            if (!host_.transport().send_forward(from, res))
                spdlog::debug("forwarded proposal {} from node {}: result dropped", seq, from);
        };
        ipc::Done<ipc::ProposeReply> done{std::move(reply)};
        if (host_.stopping()) {
            done(Error{ErrorCode::kShuttingDown,
                       "the leader is stopping; the entry was not appended", std::nullopt});
            return;
        }
        // Never forwarded again: a leader that just lost its role answers UNAVAILABLE.
        if (host_.node().role() != raft::Role::kLeader) {
            done(not_leader_error("node " + std::to_string(host_.config().node_id) +
                                  " is no longer the leader; the entry was not appended"));
            return;
        }
        propose_local(std::move(f.data), std::move(done));
        return;
    }
    if (f.kind == Forward::Kind::kOp) {
        serve_forwarded_op(from, f.seq, f.data.view());
        return;
    }
    auto it = forwards_.find(f.seq);
    if (it == forwards_.end() || it->second.leader != from) return;  // already given up on
    if (it->second.op_done) {
        if (f.ok) {
            it->second.op_done(std::string(f.data.view()));
        } else {
            auto code = ipc::error_code_from_name(f.code).value_or(ErrorCode::kTimeout);
            it->second.op_done(Error{code, f.message, std::nullopt});
        }
    } else if (f.ok) {
        it->second.done(ipc::ProposeReply{f.index, f.term});
    } else {
        auto code = ipc::error_code_from_name(f.code).value_or(ErrorCode::kIndeterminate);
        it->second.done(Error{code, f.message, std::nullopt});
    }
    forwards_.erase(it);
}

void NodeBackend::forward_op(const ipc::Request& req,
                             std::function<void(ipc::Outcome<std::string>)> done,
                             raft::NodeId transfer_to) {
    const raft::NodeId leader = host_.node().leader();
    ipc::OutBuffer out;
    ipc::encode_request(out, 0, req);
    Forward f;
    f.kind = Forward::Kind::kOp;
    f.seq = next_forward_++;
    f.data = raft::Payload(out.flatten().substr(ipc::kFrameHeaderSize));
    if (!host_.transport().send_forward(leader, f)) {
        done(not_leader_error("cannot reach the leader (node " + std::to_string(leader) + ")"));
        return;
    }
    PendingForward pf{
        leader, uv_now(host_.loop()) + wait_ms(host_.config()), {}, std::move(done), transfer_to};
    forwards_.emplace(f.seq, std::move(pf));
}

// The leader's side of a forwarded request: run it as if a local client had sent it and
// send the reply map back.
void NodeBackend::serve_forwarded_op(raft::NodeId from, uint64_t seq, std::string_view body) {
    auto send_result = [this, from, seq](bool ok, std::string reply, ipc::Error err) {
        Forward res;
        res.kind = Forward::Kind::kResult;
        res.seq = seq;
        res.ok = ok;
        if (ok) {
            res.data = raft::Payload(std::move(reply));
        } else {
            res.code = std::string(ipc::error_code_name(err.code));
            res.message = err.message;
        }
        if (!host_.transport().send_forward(from, res))
            spdlog::debug("forwarded request {} from node {}: result dropped", seq, from);
    };
    auto frame = ipc::decode_frame_body(body);
    ipc::Parsed parsed;
    if (frame) parsed = ipc::parse_request(*frame);
    if (!frame || !parsed.ok()) {
        send_result(false, {},
                    Error{ErrorCode::kBadRequest, "bad forwarded request", std::nullopt});
        return;
    }
    if (host_.node().role() != raft::Role::kLeader) {
        send_result(false, {},
                    not_leader_error("node " + std::to_string(host_.config().node_id) +
                                     " is no longer the leader"));
        return;
    }
    auto encode = [](const auto& reply) {
        ipc::OutBuffer out;
        ipc::encode_reply(out, 0, reply);
        return out.flatten().substr(ipc::kFrameHeaderSize);
    };
    ipc::Request& req = *parsed.request;
    if (auto* t = std::get_if<ipc::TransferLeaderRequest>(&req)) {
        transfer_leader(t->to, ipc::Done<ipc::TransferLeaderReply>{
                                   [send_result, encode](ipc::Outcome<ipc::TransferLeaderReply> r) {
                                       if (r.ok())
                                           send_result(true, encode(r.value()), {});
                                       else
                                           send_result(false, {}, r.error());
                                   }});
        return;
    }
    std::optional<ipc::MemberChange> change;
    std::visit(
        [&](auto&& r) {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_constructible_v<ipc::MemberChange, T>) change = std::move(r);
        },
        req);
    if (!change) {
        send_result(false, {},
                    Error{ErrorCode::kBadRequest, "operation cannot be forwarded", std::nullopt});
        return;
    }
    change_members(std::move(*change), ipc::Done<ipc::Membership>{
                                           [send_result, encode](ipc::Outcome<ipc::Membership> r) {
                                               if (r.ok())
                                                   send_result(true, encode(r.value()), {});
                                               else
                                                   send_result(false, {}, r.error());
                                           }});
}

void NodeBackend::fail_forwards(raft::NodeId leader, const std::string& why) {
    for (auto it = forwards_.begin(); it != forwards_.end();) {
        if (leader == raft::kNoNode || it->second.leader == leader) {
            if (it->second.op_done)
                it->second.op_done(
                    Error{ErrorCode::kTimeout, why + "; it may still take effect", std::nullopt});
            else
                it->second.done(Error{ErrorCode::kIndeterminate,
                                      why + "; the entry may still commit", std::nullopt});
            it = forwards_.erase(it);
        } else {
            ++it;
        }
    }
}

// ---- reads ------------------------------------------------------------------------------

void NodeBackend::read_index(ipc::Done<ipc::ReadIndexReply> done) {
    if (host_.stopping()) {
        done(Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt});
        return;
    }
    std::string ctx(8, '\0');
    uint64_t n = next_read_++;
    std::memcpy(ctx.data(), &n, sizeof n);
    if (Status st = host_.node().read_index(ctx); !st) {
        done(not_leader_error("read_index: " + st.message()));
        return;
    }
    reads_.emplace(ctx,
                   PendingRead{uv_now(host_.loop()) + wait_ms(host_.config()), std::move(done)});
    host_.kick();
}

void NodeBackend::on_read_states(const std::vector<raft::ReadState>& rs) {
    for (const auto& r : rs) {
        auto it = reads_.find(r.context);
        if (it == reads_.end()) continue;  // timed out already
        it->second.done(ipc::ReadIndexReply{r.index});
        reads_.erase(it);
    }
}

// ---- membership and leadership ----------------------------------------------------------

void NodeBackend::change_members(ipc::MemberChange change, ipc::Done<ipc::Membership> done) {
    raft::Node& n = host_.node();
    if (n.role() != raft::Role::kLeader) {
        if (n.leader() == raft::kNoNode) {
            done(not_leader_error("no leader to make the change"));
            return;
        }
        ipc::Request req = std::visit([](auto&& r) -> ipc::Request { return r; }, change);
        auto d = std::make_shared<ipc::Done<ipc::Membership>>(std::move(done));
        forward_op(req, [d](ipc::Outcome<std::string> r) {
            if (!r.ok()) return (*d)(r.error());
            auto m = parse_membership_reply(r.value());
            if (!m) return (*d)(Error{ErrorCode::kInternal, m.status().message(), std::nullopt});
            (*d)(std::move(m).value());
        });
        return;
    }
    if (conf_) {
        done(Error{ErrorCode::kBusy, "another membership change is in progress", std::nullopt});
        return;
    }
    const raft::ConfState& cs = n.conf_state();
    raft::ConfChange cc;
    auto bad = [&](std::string m) {
        done(Error{ErrorCode::kBadRequest, std::move(m), std::nullopt});
    };
    auto need_member = [&](raft::NodeId id) {
        if (raft::is_member(cs, id)) return true;
        bad("node " + std::to_string(id) + " is not a member");
        return false;
    };
    bool leave_joint = false;
    if (auto* a = std::get_if<ipc::AddMemberRequest>(&change)) {
        if (raft::is_member(cs, a->node))
            return bad("node " + std::to_string(a->node) + " is already a member");
        cc.changes.push_back(
            {a->learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddNode,
             a->node, a->addr});
    } else if (auto* r = std::get_if<ipc::RemoveMemberRequest>(&change)) {
        if (!need_member(r->node)) return;
        cc.changes.push_back({raft::ConfChangeType::kRemoveNode, r->node, ""});
    } else if (auto* p = std::get_if<ipc::PromoteRequest>(&change)) {
        if (!need_member(p->node)) return;
        if (raft::is_voter(cs, p->node))
            return bad("node " + std::to_string(p->node) + " is already a voter");
        cc.changes.push_back({raft::ConfChangeType::kAddNode, p->node, ""});
    } else if (auto* d = std::get_if<ipc::DemoteRequest>(&change)) {
        if (!need_member(d->node)) return;
        if (!raft::is_voter(cs, d->node))
            return bad("node " + std::to_string(d->node) + " is not a voter");
        cc.changes.push_back({raft::ConfChangeType::kAddLearner, d->node, ""});
        leave_joint = true;  // demoting a voter goes through a joint configuration
    } else if (auto* c = std::get_if<ipc::ChangeMembersRequest>(&change)) {
        for (const auto& m : c->add) {
            if (raft::is_member(cs, m.node))
                return bad("node " + std::to_string(m.node) + " is already a member");
            cc.changes.push_back(
                {m.learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddNode,
                 m.node, m.addr});
        }
        for (raft::NodeId id : c->remove) {
            if (!need_member(id)) return;
            cc.changes.push_back({raft::ConfChangeType::kRemoveNode, id, ""});
        }
        if (cc.changes.empty()) return bad("nothing to change");
        cc.transition = raft::ConfTransition::kJointImplicit;
        leave_joint = true;
    }
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
    pc.wait_leave_joint = leave_joint || cc.enters_joint();
    pc.deadline = uv_now(host_.loop()) + wait_ms(host_.config());
    pc.done = std::move(done);
    conf_ = std::move(pc);
    host_.kick();
}

void NodeBackend::on_applied() {
    if (conf_ && conf_->committed) {
        const raft::ConfState& cs = host_.node().conf_state();
        if (!conf_->wait_leave_joint || !cs.joint()) {
            conf_->done(membership(cs, false));
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
        auto d = std::make_shared<ipc::Done<ipc::TransferLeaderReply>>(std::move(done));
        forward_op(
            ipc::TransferLeaderRequest{to},
            [d](ipc::Outcome<std::string> r) {
                if (!r.ok()) return (*d)(r.error());
                auto f = ipc::decode_frame_body(r.value());
                const msgpack::object* l = f ? f->find("leader") : nullptr;
                if (!l || l->type != msgpack::type::POSITIVE_INTEGER)
                    return (*d)(Error{ErrorCode::kInternal, "bad transfer reply from the leader",
                                      std::nullopt});
                (*d)(ipc::TransferLeaderReply{l->via.u64});
            },
            to);
        return;
    }
    if (Status st = n.transfer_leader(to); !st) {
        if (st.code() == Code::kNotLeader)
            done(not_leader_error(st.message()));
        else
            done(Error{ErrorCode::kBadRequest, st.message(), std::nullopt});
        return;
    }
    transfers_.push_back({to, uv_now(host_.loop()) + wait_ms(host_.config()), std::move(done)});
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
    if (was_leader_ && !leader && !proposals_.empty())
        orphan_deadline_ = uv_now(host_.loop()) + wait_ms(host_.config());
    if (leader) orphan_deadline_ = 0;
    was_leader_ = leader;
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
        // A transfer forwarded to the old leader succeeded when its target now leads.
        for (auto it = forwards_.begin(); it != forwards_.end();) {
            if (l != raft::kNoNode && it->second.transfer_to == l) {
                ipc::OutBuffer out;
                ipc::encode_reply(out, 0, ipc::TransferLeaderReply{l});
                std::string body = out.flatten().substr(ipc::kFrameHeaderSize);
                it->second.op_done(std::move(body));
                it = forwards_.erase(it);
            } else {
                ++it;
            }
        }
        // A request forwarded to the old leader may or may not have taken effect there. A
        // transfer waits through the leaderless moment it causes itself.
        for (auto it = forwards_.begin(); it != forwards_.end();) {
            PendingForward& pf = it->second;
            if (pf.transfer_to != raft::kNoNode && l == raft::kNoNode) {
                ++it;
                continue;
            }
            const std::string why = "the leader changed while the request was forwarded";
            if (pf.op_done)
                pf.op_done(
                    Error{ErrorCode::kTimeout, why + "; it may still take effect", std::nullopt});
            else
                pf.done(Error{ErrorCode::kIndeterminate, why + "; the entry may still commit",
                              std::nullopt});
            it = forwards_.erase(it);
        }
        if (notify_leader_)
            notify_leader_(ipc::LeaderHint{l, l ? raft::address_of(n.conf_state(), l) : ""});
    }
}

void NodeBackend::expire() {
    const uint64_t now = uv_now(host_.loop());
    if (orphan_deadline_ && orphan_deadline_ <= now) {
        orphan_deadline_ = 0;
        for (auto& p : proposals_)
            p.done(
                Error{ErrorCode::kIndeterminate,
                      "this node lost leadership before the entry committed; it may still commit",
                      std::nullopt});
        proposals_.clear();
    }
    for (auto it = reads_.begin(); it != reads_.end();) {
        if (it->second.deadline <= now) {
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
    if (conf_ && conf_->deadline <= now) {
        conf_->done(Error{ErrorCode::kTimeout,
                          "the change was not applied in time; it may still be", std::nullopt});
        conf_.reset();
    }
    for (auto it = forwards_.begin(); it != forwards_.end();) {
        if (it->second.deadline <= now) {
            if (it->second.op_done)
                it->second.op_done(Error{
                    ErrorCode::kTimeout,
                    "no answer from the leader in time; it may still take effect", std::nullopt});
            else
                it->second.done(Error{
                    ErrorCode::kIndeterminate,
                    "no answer from the leader in time; the entry may still commit", std::nullopt});
            it = forwards_.erase(it);
        } else {
            ++it;
        }
    }
}

void NodeBackend::on_stopping() {
    Error e{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt};
    for (auto& p : proposals_)
        p.done(e);
    proposals_.clear();
    for (auto& [k, r] : reads_)
        r.done(e);
    reads_.clear();
    if (conf_) conf_->done(e);
    conf_.reset();
    for (auto& t : transfers_)
        t.done(e);
    transfers_.clear();
    for (auto& [k, f] : forwards_) {
        if (f.op_done)
            f.op_done(e);
        else
            f.done(e);
    }
    forwards_.clear();
    timer_.close();
}

// ---- the commit stream ------------------------------------------------------------------

raft::Index NodeBackend::first_index() const {
    return host_.store().storage().first_index();
}

raft::Index NodeBackend::commit_index() const {
    return host_.delivered();
}

Result<ipc::Membership> NodeBackend::config_at(const raft::Entry& e) {
    auto it = conf_cache_.find(e.index);
    if (it != conf_cache_.end()) return membership(it->second, false);
    // Replay config entries from the nearest known configuration before e (the snapshot's
    // at worst). Config entries are rare, and results are cached.
    const auto& s = host_.store().storage();
    raft::SnapshotMeta snap = s.snapshot_meta();
    raft::ConfState cs = snap.conf;
    raft::Index from = snap.index + 1;
    auto below = conf_cache_.lower_bound(e.index);
    if (below != conf_cache_.begin()) {
        --below;
        if (below->first >= snap.index) {
            cs = below->second;
            from = below->first + 1;
        }
    }
    for (raft::Index i = from; i <= e.index;) {
        auto ents = s.entries(i, e.index + 1, 1u << 20);
        if (!ents) return ents.status();
        for (const raft::Entry& x : *ents) {
            if (x.type == raft::EntryType::kConfig) {
                auto cc = raft::decode_conf_change(x.data.view());
                if (cc) {
                    auto next = raft::apply_conf_change(cs, *cc);
                    if (next) cs = std::move(next).value();  // refused: unchanged, as in raft
                }
                conf_cache_[x.index] = cs;
            }
            i = x.index + 1;
        }
    }
    return membership(cs, false);
}

Result<std::vector<ipc::StreamEntry>> NodeBackend::read_entries(raft::Index from,
                                                                uint64_t max_bytes) {
    const raft::Index commit = commit_index();
    if (from > commit)
        return Status::not_found("index " + std::to_string(from) + " is not committed");
    auto ents = host_.store().storage().entries(from, commit + 1, max_bytes);
    if (!ents) return ents.status();
    std::vector<ipc::StreamEntry> out;
    out.reserve(ents->size());
    for (raft::Entry& e : *ents) {
        ipc::StreamEntry se;
        if (e.type == raft::EntryType::kConfig) {
            auto m = config_at(e);
            if (!m) return m.status();
            se.config = std::move(m).value();
        }
        se.entry = std::move(e);
        out.push_back(std::move(se));
    }
    return out;
}

ipc::SnapshotInfo NodeBackend::latest_snapshot() const {
    raft::SnapshotMeta m = host_.store().storage().snapshot_meta();
    return {m.index, m.term, membership(m.conf, false)};
}

Result<raft::SnapshotBytes> NodeBackend::read_snapshot(raft::Index index, uint64_t offset,
                                                       uint64_t max_bytes) {
    const raft::SnapshotSource* src = host_.store().snapshots();
    if (!src) return Status::not_found("no snapshot");
    return src->read_snapshot(index, offset, max_bytes);
}

namespace {

// One application snapshot upload. Every step runs on the storage thread in order (begin,
// the chunks, finish), so the loop never waits for snapshot bytes to reach the disk.
class AppUpload final : public ipc::SnapshotWriter {
  public:
    AppUpload(NodeHost& host, raft::SnapshotMeta meta, std::shared_ptr<bool> busy)
        : host_(host), meta_(std::move(meta)), busy_(std::move(busy)) {
        *busy_ = true;
        DurableStore* store = &host_.store_for_storage_thread();
        raft::SnapshotMeta m = meta_;
        host_.run_on_storage_thread([store, m] { return store->app_snapshot_begin(m); },
                                    [](Status st) {
                                        if (!st) spdlog::warn("snapshot upload: {}", st.message());
                                    });
    }
    ~AppUpload() override {
        if (!ended_) abort();
    }

    void write(raft::Payload chunk, ipc::Done<ipc::Unit> done) override {
        if (ended_) {
            done(Error{ErrorCode::kBadRequest, "the upload has ended", std::nullopt});
            return;
        }
        DurableStore* store = &host_.store_for_storage_thread();
        const uint64_t off = offset_;
        offset_ += chunk.size();
        auto d = std::make_shared<ipc::Done<ipc::Unit>>(std::move(done));
        host_.run_on_storage_thread(
            [store, off, chunk] { return store->app_snapshot_write(off, chunk.view()); },
            [d](Status st) {
                if (st)
                    (*d)(ipc::Unit{});
                else
                    (*d)(Error{ErrorCode::kInternal, "saving the snapshot: " + st.message(),
                               std::nullopt});
            });
    }

    void finish(raft::Payload last, ipc::Done<raft::Index> done) override {
        if (ended_) {
            done(Error{ErrorCode::kBadRequest, "the upload has ended", std::nullopt});
            return;
        }
        ended_ = true;
        DurableStore* store = &host_.store_for_storage_thread();
        const uint64_t off = offset_;
        const raft::Index index = meta_.index;
        auto d = std::make_shared<ipc::Done<raft::Index>>(std::move(done));
        auto busy = busy_;
        NodeHost* host = &host_;
        host_.run_on_storage_thread(
            [store, off, last] {
                if (!last.empty()) {
                    if (Status st = store->app_snapshot_write(off, last.view()); !st) return st;
                }
                return store->app_snapshot_finish();
            },
            [d, busy, index, host](Status st) {
                *busy = false;
                if (!st) {
                    (*d)(Error{ErrorCode::kInternal, "saving the snapshot: " + st.message(),
                               std::nullopt});
                    return;
                }
                spdlog::info("snapshot at index {} saved; log compacted below it", index);
                (*d)(index);
                host->kick();
            });
    }

    void abort() override {
        if (ended_) return;
        ended_ = true;
        *busy_ = false;
        DurableStore* store = &host_.store_for_storage_thread();
        host_.run_on_storage_thread(
            [store] {
                store->app_snapshot_abort();
                return Status::ok();
            },
            nullptr);
    }

  private:
    NodeHost& host_;
    raft::SnapshotMeta meta_;
    std::shared_ptr<bool> busy_;
    uint64_t offset_ = 0;
    bool ended_ = false;
};

}  // namespace

ipc::Outcome<std::unique_ptr<ipc::SnapshotWriter>> NodeBackend::begin_snapshot(raft::Index index) {
    if (host_.stopping()) return Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt};
    if (*upload_busy_)
        return Error{ErrorCode::kBusy, "another snapshot upload is in progress", std::nullopt};
    if (index > commit_index())
        return Error{ErrorCode::kBadRequest,
                     "index " + std::to_string(index) + " is above the commit index " +
                         std::to_string(commit_index()),
                     std::nullopt};
    const raft::Index current = host_.store().storage().snapshot_meta().index;
    if (index <= current)
        return Error{ErrorCode::kBadRequest,
                     "a snapshot at index " + std::to_string(current) + " already covers index " +
                         std::to_string(index),
                     std::nullopt};
    auto meta = host_.node().snapshot_meta(index);
    if (!meta) return Error{ErrorCode::kNotFound, meta.status().message(), std::nullopt};
    return std::unique_ptr<ipc::SnapshotWriter>(
        std::make_unique<AppUpload>(host_, std::move(meta).value(), upload_busy_));
}

}  // namespace raftd::daemon
