// LeaderWait: requests that need a leader (propose, read_index, the membership operations,
// transfer_leader) and arrive while this node knows none wait here for one, up to their
// deadline, instead of failing at once (docs/protocol.md 6.7). An election then costs a
// client latency, not a retry loop.
//
// Owns: the queue of waiting requests (in arrival order, over all connections), its count
// and byte totals, and the one timer that fails requests whose deadline passed.
// Never: run a request out of arrival order (a request arriving while others wait queues
// behind them even when a leader is already known, so one connection's proposals reach the
// Backend in the order they were sent: docs/protocol.md 6.2); hold more than max_requests
// requests or max_bytes of their data (BUSY beyond); answer anything but UNAVAILABLE for a
// request whose deadline passed (nothing was done: it never reached the Backend).
//
// Thread rules: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ipc/backend.h"
#include "ipc/uv.h"

namespace raftd::ipc {

class LeaderWait {
  public:
    struct Limits {
        uint64_t max_requests = 1024;
        uint64_t max_bytes = 16u << 20;  // data of the waiting requests, plus kOverhead each
        uint64_t default_timeout_ms = 5000;
    };
    // What a waiting request is charged besides its data.
    static constexpr uint64_t kOverhead = 128;

    LeaderWait(uv::Loop& loop, Backend& backend, Limits limits)
        : loop_(loop), backend_(backend), limits_(limits) {}
    LeaderWait(const LeaderWait&) = delete;
    LeaderWait& operator=(const LeaderWait&) = delete;

    // Runs call(done) now when the Backend knows a leader and nothing waits; otherwise
    // queues it until a leader is known or `timeout_ms` (absent: the default) passed, then
    // answers UNAVAILABLE (timeout_ms 0: at once). Full queue: BUSY at once. `connection`
    // names the client, for drop(). `bytes` is the request's data size.
    template <typename T>
    void submit(uint64_t connection, std::optional<uint64_t> timeout_ms, uint64_t bytes,
                std::function<void(Done<T>)> call, Done<T> done);

    // Runs the waiting requests in order while the Backend knows a leader. The server calls
    // it when the leader changes and at each flush point while requests wait.
    void drain();
    // Drops the waiting requests of a closed connection without answering: nothing was done.
    void drop(uint64_t connection);
    // Answers every waiting request with `why` (the server is stopping) and closes the timer.
    void close(const Error& why);

    size_t size() const { return q_.size(); }
    uint64_t bytes() const { return bytes_; }

  private:
    struct Item {
        uint64_t connection = 0;
        uint64_t deadline = 0;
        uint64_t bytes = 0;
        uint64_t waited_ms = 0;  // its timeout, for the message
        std::function<void()> run;
        std::function<void(const Error&)> fail;
    };
    // Queues `it` or answers it at once; see submit().
    void enqueue(Item it, std::optional<uint64_t> timeout_ms);
    void expire();
    void arm();

    uv::Loop& loop_;
    Backend& backend_;
    Limits limits_;
    std::deque<Item> q_;
    uint64_t bytes_ = 0;
    uv::Timer timer_;
    bool closed_ = false;
    bool draining_ = false;
};

template <typename T>
void LeaderWait::submit(uint64_t connection, std::optional<uint64_t> timeout_ms, uint64_t bytes,
                        std::function<void(Done<T>)> call, Done<T> done) {
    if (q_.empty() && backend_.leader() != raft::kNoNode) return call(std::move(done));
    // The call and its completion, shared by whichever of run/fail happens (exactly one).
    struct State {
        std::function<void(Done<T>)> call;
        Done<T> done;
    };
    auto s = std::make_shared<State>(State{std::move(call), std::move(done)});
    Item it;
    it.connection = connection;
    it.bytes = bytes + kOverhead;
    it.run = [s] { s->call(std::move(s->done)); };
    it.fail = [s](const Error& e) { s->done(e); };
    enqueue(std::move(it), timeout_ms);
}

}  // namespace raftd::ipc
