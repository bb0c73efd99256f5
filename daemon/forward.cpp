// Forwarding: see forward.h.
#include "daemon/forward.h"

#include <utility>

namespace raftd::daemon {

using ipc::Error;
using ipc::ErrorCode;

Forwarder::Pending* Forwarder::send(raft::NodeId leader, Forward::Kind kind, raft::Payload data,
                                    uint64_t deadline, raft::SessionKey key) {
    Forward f;
    f.kind = kind;
    f.seq = next_seq_++;
    f.data = std::move(data);
    f.client = key.client;
    f.client_seq = key.seq;
    if (!send_(leader, f)) return nullptr;
    Pending& p = pending_[f.seq];
    p.leader = leader;
    p.deadline = deadline;
    return &p;
}

void Forwarder::propose(raft::NodeId leader, raft::Payload data, raft::SessionKey key,
                        uint64_t deadline, ipc::Done<ipc::ProposeReply> done, ipc::Error unsent) {
    Pending* p = send(leader, Forward::Kind::kPropose, std::move(data), deadline, key);
    if (p == nullptr) {
        done(std::move(unsent));
        return;
    }
    p->propose = std::move(done);
}

void Forwarder::request(raft::NodeId leader, const ipc::Request& req, uint64_t deadline,
                        RequestDone done, ipc::Error unsent, raft::NodeId transfer_to) {
    ipc::OutBuffer out;
    ipc::encode_request(out, 0, req);
    Pending* p = send(leader, Forward::Kind::kOp,
                      raft::Payload(out.flatten().substr(ipc::kFrameHeaderSize)), deadline);
    if (p == nullptr) {
        done(std::move(unsent));
        return;
    }
    p->request = std::move(done);
    p->transfer_to = transfer_to;
}

void Forwarder::on_result(raft::NodeId from, const Forward& f) {
    auto it = pending_.find(f.seq);
    if (it == pending_.end() || it->second.leader != from) return;  // already given up on
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.request)
        p.request(request_result(f));
    else
        p.propose(propose_result(f));
}

void Forwarder::leader_changed(raft::NodeId leader) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        Pending& p = it->second;
        if (p.transfer_to != raft::kNoNode) {
            if (p.transfer_to == leader) {
                Pending done = std::move(p);
                it = pending_.erase(it);
                done.request(reply_body(ipc::TransferLeaderReply{leader}));
                continue;
            }
            if (leader == raft::kNoNode) {
                ++it;
                continue;
            }
        }
        Pending gone = std::move(p);
        it = pending_.erase(it);
        give_up(gone, "the leader changed while the request was forwarded");
    }
}

void Forwarder::peer_down(raft::NodeId peer, const std::string& why) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.leader == peer) {
            Pending gone = std::move(it->second);
            it = pending_.erase(it);
            give_up(gone, why);
        } else {
            ++it;
        }
    }
}

void Forwarder::expire(uint64_t now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline <= now) {
            Pending gone = std::move(it->second);
            it = pending_.erase(it);
            give_up(gone, "no answer from the leader in time");
        } else {
            ++it;
        }
    }
}

void Forwarder::stop(const ipc::Error& e) {
    auto all = std::move(pending_);
    pending_.clear();
    for (auto& [seq, p] : all) {
        if (p.request)
            p.request(e);
        else
            p.propose(e);
    }
}

void Forwarder::give_up(Pending& p, const std::string& why) {
    if (p.request)
        p.request(Error{ErrorCode::kTimeout, why + "; it may still take effect", std::nullopt});
    else
        p.propose(
            Error{ErrorCode::kIndeterminate, why + "; the entry may still commit", std::nullopt});
}

namespace {

Forward result_frame(uint64_t seq, const ipc::Error* err) {
    Forward res;
    res.kind = Forward::Kind::kResult;
    res.seq = seq;
    res.ok = err == nullptr;
    if (err) {
        res.code = std::string(ipc::error_code_name(err->code));
        res.message = err->message;
    }
    return res;
}

}  // namespace

Forward propose_result_frame(uint64_t seq, const ipc::Outcome<ipc::ProposeReply>& r) {
    Forward res = result_frame(seq, r.ok() ? nullptr : &r.error());
    if (r.ok()) {
        res.index = r.value().index;
        res.term = r.value().term;
        res.duplicate = r.value().duplicate;
    }
    return res;
}

ipc::Outcome<ipc::ProposeReply> propose_result(const Forward& f) {
    if (f.ok) return ipc::ProposeReply{f.index, f.term, f.duplicate};
    auto code = ipc::error_code_from_name(f.code).value_or(ErrorCode::kIndeterminate);
    return Error{code, f.message, std::nullopt};
}

Forward request_result_frame(uint64_t seq, const ipc::Outcome<std::string>& r) {
    Forward res = result_frame(seq, r.ok() ? nullptr : &r.error());
    if (r.ok()) res.data = raft::Payload(r.value());
    return res;
}

ipc::Outcome<std::string> request_result(const Forward& f) {
    if (f.ok) return std::string(f.data.view());
    auto code = ipc::error_code_from_name(f.code).value_or(ErrorCode::kTimeout);
    return Error{code, f.message, std::nullopt};
}

ipc::Outcome<ForwardedRequest> parse_forwarded_request(std::string_view body) {
    auto frame = ipc::decode_frame_body(body);
    ipc::Parsed parsed;
    if (frame) parsed = ipc::parse_request(*frame);
    if (!frame || !parsed.ok())
        return Error{ErrorCode::kBadRequest, "bad forwarded request", std::nullopt};
    ipc::Request& req = *parsed.request;
    if (auto* t = std::get_if<ipc::TransferLeaderRequest>(&req)) return ForwardedRequest{*t};
    std::optional<ipc::MemberChange> change;
    std::visit(
        [&](auto&& r) {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_constructible_v<ipc::MemberChange, T>) change = std::move(r);
        },
        req);
    if (!change)
        return Error{ErrorCode::kBadRequest, "operation cannot be forwarded", std::nullopt};
    return ForwardedRequest{std::move(*change)};
}

}  // namespace raftd::daemon
