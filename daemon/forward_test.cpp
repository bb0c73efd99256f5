#include "daemon/forward.h"

#include <doctest/doctest.h>

#include <optional>
#include <vector>

#include "ipc/frame.h"

using namespace raftd;
using namespace raftd::daemon;
using ipc::ErrorCode;

namespace {

// A Forward through the peer wire format and back, as the other node reads it.
Forward wire(const Forward& f) {
    ipc::OutBuffer out;
    encode_forward(out, f);
    ipc::FrameDecoder dec;
    dec.feed(out.flatten());
    auto d = dec.next();
    REQUIRE(d.kind == ipc::FrameDecoder::Kind::kFrame);
    REQUIRE(is_forward(d.frame));
    auto back = decode_forward(d.frame);
    REQUIRE(back);
    return std::move(back).value();
}

// A follower whose frames land in `sent` (or are refused when `refuse`).
struct Follower {
    std::vector<std::pair<raft::NodeId, Forward>> sent;
    bool refuse = false;
    Forwarder fwd{[this](raft::NodeId to, const Forward& f) {
        if (refuse) return false;
        sent.emplace_back(to, f);
        return true;
    }};
};

// Every answer a client got.
template <typename T>
struct Answers {
    std::vector<ipc::Outcome<T>> got;
    ipc::Done<T> done() {
        return ipc::Done<T>{[this](ipc::Outcome<T> r) { got.push_back(std::move(r)); }};
    }
    std::function<void(ipc::Outcome<T>)> fn() {
        return [this](ipc::Outcome<T> r) { got.push_back(std::move(r)); };
    }
    const ipc::Outcome<T>& once() const {
        REQUIRE(got.size() == 1);
        return got.front();
    }
};

const ipc::Error kUnsent{ErrorCode::kUnavailable, "not sent; the entry was not appended",
                         std::nullopt};

// The leader answering forwarded proposal `seq` with `r`, through the wire.
Forward leader_answers(uint64_t seq, const ipc::Outcome<ipc::ProposeReply>& r) {
    return wire(propose_result_frame(seq, r));
}

}  // namespace

TEST_CASE("the leader's answer to a forwarded proposal reaches the client as it was given") {
    Follower f;
    Answers<ipc::ProposeReply> a, b, c, d;
    f.fwd.propose(1, raft::Payload(std::string("x")), {}, 100, a.done(), kUnsent);
    f.fwd.propose(1, raft::Payload(std::string("y")), {}, 100, b.done(), kUnsent);
    f.fwd.propose(1, raft::Payload(std::string("z")), {}, 100, c.done(), kUnsent);
    f.fwd.propose(1, raft::Payload(std::string("w")), {}, 100, d.done(), kUnsent);
    REQUIRE(f.sent.size() == 4);
    const Forward sent = wire(f.sent[0].second);
    CHECK(sent.kind == Forward::Kind::kPropose);
    CHECK(sent.data.view() == "x");

    f.fwd.on_result(1, leader_answers(f.sent[0].second.seq, ipc::ProposeReply{7, 3}));
    f.fwd.on_result(1, leader_answers(f.sent[1].second.seq,
                                      ipc::Error{ErrorCode::kUnavailable, "replaced", {}}));
    f.fwd.on_result(1, leader_answers(f.sent[2].second.seq,
                                      ipc::Error{ErrorCode::kIndeterminate, "maybe", {}}));
    Forward odd = leader_answers(f.sent[3].second.seq, ipc::Error{ErrorCode::kBusy, "", {}});
    odd.code = "SOMETHING_NEW";  // a newer leader's code
    f.fwd.on_result(1, odd);

    REQUIRE(a.once().ok());
    CHECK(a.once().value().index == 7);
    CHECK(a.once().value().term == 3);
    CHECK(b.once().error().code == ErrorCode::kUnavailable);
    CHECK(b.once().error().message == "replaced");
    CHECK(c.once().error().code == ErrorCode::kIndeterminate);
    CHECK(d.once().error().code == ErrorCode::kIndeterminate);
    CHECK(f.fwd.size() == 0);
}

TEST_CASE("a keyed proposal reaches the leader with its key; a duplicate answer says so") {
    Follower f;
    Answers<ipc::ProposeReply> a, e;
    f.fwd.propose(1, raft::Payload(std::string("x")), {77, 5}, 100, a.done(), kUnsent);
    f.fwd.propose(1, raft::Payload(std::string("y")), {77, 6}, 100, e.done(), kUnsent);
    const Forward sent = wire(f.sent[0].second);
    CHECK(sent.data.view() == "x");
    CHECK(sent.client == 77);
    CHECK(sent.client_seq == 5);
    CHECK(wire(f.sent[1].second).client_seq == 6);
    f.fwd.on_result(1, leader_answers(f.sent[0].second.seq, ipc::ProposeReply{7, 3, true}));
    f.fwd.on_result(
        1, leader_answers(f.sent[1].second.seq, ipc::Error{ErrorCode::kExpired, "evicted", {}}));
    REQUIRE(a.once().ok());
    CHECK(a.once().value().index == 7);
    CHECK(a.once().value().duplicate);
    CHECK(e.once().error().code == ErrorCode::kExpired);
}

TEST_CASE("a forwarded proposal is UNAVAILABLE only when its frame never left") {
    Follower f;
    Answers<ipc::ProposeReply> unsent, lost_conn, new_leader, late, stopped;
    f.refuse = true;
    f.fwd.propose(1, raft::Payload(std::string("a")), {}, 100, unsent.done(), kUnsent);
    CHECK(unsent.once().error().code == ErrorCode::kUnavailable);
    CHECK(f.fwd.size() == 0);
    f.refuse = false;

    f.fwd.propose(1, raft::Payload(std::string("b")), {}, 100, lost_conn.done(), kUnsent);
    f.fwd.propose(2, raft::Payload(std::string("c")), {}, 100, new_leader.done(), kUnsent);
    f.fwd.peer_down(1, "connection lost");
    CHECK(lost_conn.once().error().code == ErrorCode::kIndeterminate);
    CHECK(new_leader.got.empty());  // went to node 2
    f.fwd.leader_changed(3);
    CHECK(new_leader.once().error().code == ErrorCode::kIndeterminate);

    f.fwd.propose(3, raft::Payload(std::string("d")), {}, 100, late.done(), kUnsent);
    f.fwd.expire(99);
    CHECK(late.got.empty());
    f.fwd.expire(100);
    CHECK(late.once().error().code == ErrorCode::kIndeterminate);
    // The leader's answer arriving afterwards is ignored: one answer per proposal.
    f.fwd.on_result(3, leader_answers(f.sent.back().second.seq, ipc::ProposeReply{9, 4}));
    CHECK(late.got.size() == 1);

    f.fwd.propose(3, raft::Payload(std::string("e")), {}, 100, stopped.done(), kUnsent);
    f.fwd.stop(ipc::Error{ErrorCode::kShuttingDown, "raftd is stopping", std::nullopt});
    CHECK(stopped.once().error().code == ErrorCode::kShuttingDown);
}

TEST_CASE("a result from a node the request did not go to is ignored") {
    Follower f;
    Answers<ipc::ProposeReply> a;
    f.fwd.propose(1, raft::Payload(std::string("a")), {}, 100, a.done(), kUnsent);
    f.fwd.on_result(2, leader_answers(f.sent[0].second.seq, ipc::ProposeReply{5, 5}));
    CHECK(a.got.empty());
    f.fwd.on_result(1, leader_answers(f.sent[0].second.seq, ipc::ProposeReply{5, 6}));
    CHECK(a.once().value().term == 6);
}

TEST_CASE("a forwarded transfer succeeds when its target leads and waits through no leader") {
    Follower f;
    Answers<std::string> transfer, change;
    f.fwd.request(1, ipc::TransferLeaderRequest{2}, 100, transfer.fn(), kUnsent, 2);
    f.fwd.request(1, ipc::RemoveMemberRequest{3}, 100, change.fn(), kUnsent);
    REQUIRE(f.sent.size() == 2);
    const Forward sent = wire(f.sent[0].second);  // the frame refers to its bytes
    auto req = ipc::decode_frame_body(sent.data.view());
    REQUIRE(req);
    ipc::Parsed parsed = ipc::parse_request(*req);
    CHECK_MESSAGE(parsed.ok(), parsed.error.message);

    f.fwd.leader_changed(raft::kNoNode);
    CHECK(transfer.got.empty());
    CHECK(change.once().error().code == ErrorCode::kTimeout);
    f.fwd.leader_changed(2);
    REQUIRE(transfer.once().ok());
    auto reply = ipc::decode_frame_body(transfer.once().value());
    REQUIRE(reply);
    const msgpack::object* l = reply->find("leader");
    REQUIRE(l);
    CHECK(l->via.u64 == 2);
}

TEST_CASE("a forwarded request's reply map and error come back through the wire") {
    const std::string body = reply_body(ipc::TransferLeaderReply{4});
    auto ok = request_result(wire(request_result_frame(3, body)));
    REQUIRE(ok.ok());
    CHECK(ok.value() == body);
    auto busy = request_result(
        wire(request_result_frame(3, ipc::Error{ErrorCode::kBusy, "another change", {}})));
    CHECK(busy.error().code == ErrorCode::kBusy);
    CHECK(busy.error().message == "another change");
    Forward odd = request_result_frame(3, ipc::Error{ErrorCode::kBusy, "", {}});
    odd.code = "SOMETHING_NEW";
    CHECK(request_result(wire(odd)).error().code == ErrorCode::kTimeout);
}

TEST_CASE("a leader runs only transfers and membership changes for a follower") {
    auto body = [](const ipc::Request& r) {
        ipc::OutBuffer out;
        ipc::encode_request(out, 0, r);
        return out.flatten().substr(ipc::kFrameHeaderSize);
    };
    auto t = parse_forwarded_request(body(ipc::TransferLeaderRequest{3}));
    REQUIRE(t.ok());
    CHECK(std::get<ipc::TransferLeaderRequest>(t.value()).to == 3);
    auto m = parse_forwarded_request(body(ipc::DemoteRequest{2}));
    REQUIRE(m.ok());
    auto& change = std::get<ipc::MemberChange>(m.value());
    CHECK(std::get<ipc::DemoteRequest>(change).node == 2);
    auto other = parse_forwarded_request(body(ipc::CampaignRequest{}));
    CHECK(other.error().code == ErrorCode::kBadRequest);
    CHECK(other.error().message == "operation cannot be forwarded");
    CHECK(parse_forwarded_request("junk").error().code == ErrorCode::kBadRequest);
}
