// Dispatch (see dispatch.h): request -> Backend call -> reply.
#include "ipc/dispatch.h"

#include <spdlog/spdlog.h>

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "ipc/connection.h"

namespace raftd::ipc {

namespace {

Error err(ErrorCode c, std::string msg) {
    return Error{c, std::move(msg), std::nullopt};
}

// A snapshot chunk: the middle ones are acknowledged once written, the last one with the
// snapshot's index once it is durable.
void snapshot_chunk(Connection& c, uint64_t id, SnapshotRequest&& r) {
    Upload& up = c.upload();
    if (auto e = up.accept(r)) return c.send_error(id, std::move(*e));
    if (!r.done) {
        up.write(std::move(r.data), c.answer_later<Unit>(id, [](OutBuffer& o, uint64_t rid, Unit) {
            encode_reply(o, rid, SnapshotReply{});
        }));
        return;
    }
    up.finish(std::move(r.data),
              c.answer_later<raft::Index>(id, [](OutBuffer& o, uint64_t rid, raft::Index i) {
                  encode_reply(o, rid, SnapshotReply{i});
              }));
}

// Calls the Backend through the leader wait (leader_wait.h): at once when a leader is known,
// else once one is, or UNAVAILABLE after the request's timeout.
template <typename T, typename Call>
void when_leader(Connection& c, uint64_t id, std::optional<uint64_t> timeout_ms, uint64_t bytes,
                 Call call) {
    c.leader_wait().submit<T>(c.id(), timeout_ms, bytes,
                              std::function<void(Done<T>)>(std::move(call)), c.reply_later<T>(id));
}

void handle_request(Connection& c, uint64_t id, Request&& req, std::optional<uint64_t> timeout_ms) {
    Backend& b = c.backend();
    std::visit(
        [&](auto& r) {
            using R = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<R, HelloRequest>) {
                if (r.version != kProtocolVersion)
                    return c.send_error(
                        id, err(ErrorCode::kBadRequest, "unsupported protocol version " +
                                                            std::to_string(r.version) +
                                                            " (this server speaks 1)"));
                if (r.name) spdlog::info("client {}: hello from '{}'", c.id(), *r.name);
                NodeInfo ni = b.info();
                HelloReply h;
                h.node_id = ni.node_id;
                h.cluster = ni.cluster;
                h.max_frame = c.options().max_frame;
                h.max_entry = c.options().max_entry;
                c.reply(id, h);
            } else if constexpr (std::is_same_v<R, PingRequest>) {
                c.reply(id, OkReply{});
            } else if constexpr (std::is_same_v<R, ProposeRequest>) {
                const uint64_t bytes = r.data.size();
                when_leader<ProposeReply>(
                    c, id, timeout_ms, bytes,
                    [bp = &b, data = std::move(r.data)](Done<ProposeReply> d) mutable {
                        bp->propose(std::move(data), std::move(d));
                    });
            } else if constexpr (std::is_same_v<R, SubscribeRequest>) {
                if (c.subscriptions().size() >= c.options().max_subscriptions)
                    return c.send_error(
                        id, err(ErrorCode::kBusy,
                                "too many subscriptions on this connection (" +
                                    std::to_string(c.options().max_subscriptions) + ")"));
                c.subscriptions().start(id, r.from);
                c.reply(id, OkReply{});  // the reply precedes the stream's first event
                c.pump();
            } else if constexpr (std::is_same_v<R, UnsubscribeRequest>) {
                if (!c.subscriptions().stop(r.sub))
                    return c.send_error(id, err(ErrorCode::kNotFound,
                                                "no active subscription " + std::to_string(r.sub)));
                c.reply(id, OkReply{});
            } else if constexpr (std::is_same_v<R, ReadIndexRequest>) {
                when_leader<ReadIndexReply>(c, id, timeout_ms, 0,
                                            [bp = &b, lease = r.lease](Done<ReadIndexReply> d) {
                                                bp->read_index(lease, std::move(d));
                                            });
            } else if constexpr (std::is_same_v<R, SnapshotRequest>) {
                snapshot_chunk(c, id, std::move(r));
            } else if constexpr (std::is_same_v<R, StatusRequest>) {
                c.reply(id, b.status());
            } else if constexpr (std::is_same_v<R, MembersRequest>) {
                c.reply(id, b.members());
            } else if constexpr (std::is_same_v<R, TransferLeaderRequest>) {
                when_leader<TransferLeaderReply>(c, id, timeout_ms, 0,
                                                 [bp = &b, to = r.to](Done<TransferLeaderReply> d) {
                                                     bp->transfer_leader(to, std::move(d));
                                                 });
            } else if constexpr (std::is_same_v<R, CampaignRequest>) {
                b.campaign(c.reply_later<CampaignReply>(id));
            } else {
                // add_member, remove_member, promote, demote, change_members
                when_leader<Membership>(
                    c, id, timeout_ms, 0,
                    [bp = &b, ch = MemberChange(std::move(r))](Done<Membership> d) mutable {
                        bp->change_members(std::move(ch), std::move(d));
                    });
            }
        },
        req);
}

}  // namespace

void dispatch(Connection& c, const Frame& f) {
    ParseLimits lim;
    lim.max_entry = c.options().max_entry;
    Parsed p = parse_request(f, lim);
    ++c.counters().requests;
    if (!p.ok()) return c.send_error(p.id, std::move(p.error));
    const uint64_t id = *p.id;
    if (c.id_in_use(id))
        return c.send_error(
            id, err(ErrorCode::kBadRequest,
                    "id " + std::to_string(id) + " is already in use on this connection"));
    if (c.in_flight() >= c.options().max_inflight)
        return c.send_error(
            id, err(ErrorCode::kBusy, "too many requests in flight on this connection"));
    handle_request(c, id, std::move(*p.request), p.timeout_ms);
}

}  // namespace raftd::ipc
