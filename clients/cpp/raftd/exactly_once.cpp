// ExactlyOnce: proposals retried under their session key until answered (see client.h and
// docs/protocol.md, "Exactly-once proposals").
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "raftd/client.h"

namespace raftd::client {

namespace {

uint64_t random_client_id() {
    std::random_device rd;
    uint64_t id = 0;
    while (id == 0)
        id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return id;
}

}  // namespace

bool retryable_with_key(ErrorCode code) {
    switch (code) {
        case ErrorCode::kUnavailable:
        case ErrorCode::kIndeterminate:
        case ErrorCode::kBusy:
        case ErrorCode::kTimeout:
        case ErrorCode::kShuttingDown:
        case ErrorCode::kConnection:
            return true;
        default:
            return false;
    }
}

ExactlyOnce::ExactlyOnce(std::vector<std::string> sockets, Options options, uint64_t client_id)
    : sockets_(std::move(sockets)),
      options_(std::move(options)),
      client_(client_id ? client_id : random_client_id()) {}

ExactlyOnce::~ExactlyOnce() = default;

Result<Proposed> ExactlyOnce::propose(std::string_view data, int deadline_ms) {
    const SessionKey key = next_key();
    ++next_seq_;
    return propose(data, key, deadline_ms);
}

Result<Proposed> ExactlyOnce::propose(std::string_view data, SessionKey key, int deadline_ms) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(deadline_ms);
    auto backoff = std::chrono::milliseconds(20);
    Error last{ErrorCode::kUnavailable, "UNAVAILABLE", "no node in the list", std::nullopt};
    if (sockets_.empty()) return last;
    for (;;) {
        if (!conn_) {
            auto c = Client::connect(sockets_[at_], options_);
            if (c)
                conn_ = std::move(c.value());
            else
                last = c.error();
        }
        if (conn_) {
            ++attempts_;
            auto r = conn_->propose(data, key);
            if (r) return r;
            last = r.error();
            if (last.code == ErrorCode::kExpired) {
                // The server cannot tell any more whether this session's keys committed:
                // later requests start a new session rather than hit EXPIRED again.
                client_ = random_client_id();
                next_seq_ = 1;
                return last;
            }
            if (!retryable_with_key(last.code)) return last;
        }
        // A node that failed, is stopping or stopped answering: try the next one. Other
        // errors (no leader yet, a leader change) are retried on the same node, which
        // forwards to whichever node leads next.
        if (!conn_ || last.code == ErrorCode::kConnection ||
            last.code == ErrorCode::kShuttingDown || last.code == ErrorCode::kTimeout) {
            conn_.reset();
            at_ = (at_ + 1) % sockets_.size();
        }
        if (Clock::now() + backoff >= deadline) return last;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    }
}

}  // namespace raftd::client
