// LeaderWait (see leader_wait.h): the queue, its deadlines and its drain.
#include "ipc/leader_wait.h"

#include <algorithm>
#include <limits>

namespace raftd::ipc {

void LeaderWait::enqueue(Item it, std::optional<uint64_t> timeout_ms) {
    const uint64_t wait = timeout_ms.value_or(limits_.default_timeout_ms);
    if (closed_ || wait == 0) {
        // Not waiting at all (timeout_ms 0, or the server is stopping): the pre-wait answer.
        return it.fail(Error{ErrorCode::kUnavailable,
                             "no leader known; the request was not performed", std::nullopt});
    }
    if (q_.size() >= limits_.max_requests || bytes_ + it.bytes > limits_.max_bytes) {
        return it.fail(Error{ErrorCode::kBusy,
                             "too many requests are waiting for a leader (" +
                                 std::to_string(q_.size()) + " requests, " +
                                 std::to_string(bytes_) + " bytes); nothing was done",
                             std::nullopt});
    }
    const uint64_t now = loop_.now();
    it.waited_ms = wait;
    it.deadline = wait > std::numeric_limits<uint64_t>::max() - now
                      ? std::numeric_limits<uint64_t>::max()
                      : now + wait;
    bytes_ += it.bytes;
    const bool earliest = std::none_of(q_.begin(), q_.end(),
                                       [&](const Item& o) { return o.deadline <= it.deadline; });
    q_.push_back(std::move(it));
    if (earliest) arm();
}

void LeaderWait::drain() {
    // A run() that leads back here (the Backend announcing a leader from inside a call)
    // must not start the next request before this one has been handed over.
    if (draining_) return;
    draining_ = true;
    // One at a time from the front: a request made meanwhile queues behind the rest.
    while (!q_.empty() && backend_.leader() != raft::kNoNode) {
        Item it = std::move(q_.front());
        q_.pop_front();
        bytes_ -= it.bytes;
        it.run();
    }
    draining_ = false;
    if (q_.empty()) (void)timer_.stop();
}

void LeaderWait::drop(uint64_t connection) {
    for (auto i = q_.begin(); i != q_.end();) {
        if (i->connection == connection) {
            bytes_ -= i->bytes;
            i = q_.erase(i);  // its completion is dropped with the closed connection
        } else {
            ++i;
        }
    }
}

void LeaderWait::close(const Error& why) {
    closed_ = true;
    auto q = std::move(q_);
    q_.clear();
    bytes_ = 0;
    for (Item& it : q)
        it.fail(why);
    timer_.close();
}

void LeaderWait::expire() {
    const uint64_t now = loop_.now();
    std::deque<Item> late;
    for (auto i = q_.begin(); i != q_.end();) {
        if (i->deadline <= now) {
            bytes_ -= i->bytes;
            late.push_back(std::move(*i));
            i = q_.erase(i);
        } else {
            ++i;
        }
    }
    for (Item& it : late)
        it.fail(Error{ErrorCode::kUnavailable,
                      "no leader was known within " + std::to_string(it.waited_ms) +
                          " ms; the request was not performed",
                      std::nullopt});
    arm();
}

void LeaderWait::arm() {
    if (q_.empty() || closed_) {
        (void)timer_.stop();
        return;
    }
    if (!timer_.is_open() && !timer_.init(loop_)) return;  // then requests wait for a leader
    uint64_t first = std::numeric_limits<uint64_t>::max();
    for (const Item& it : q_)
        first = std::min(first, it.deadline);
    const uint64_t now = loop_.now();
    (void)timer_.start(first > now ? first - now : 0, 0, [this] { expire(); });
}

}  // namespace raftd::ipc
