// The apply loop (see apply_loop.h). The subscription callback only queues events; they are
// applied from step() on the caller's thread, after the client call that received them has
// returned. That keeps apply() out of the client's dispatch (a snapshot upload or a
// read_index dispatches stream events while it waits) and keeps the order of the stream.
#include "raftd/apply_loop.h"

#include <algorithm>
#include <thread>

namespace raftd::client {

namespace {

int ms_until(ApplyLoop::Clock::time_point t) {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t - ApplyLoop::Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

// Errors after which the same request may succeed on a new connection or once a leader is
// known; for read_index (read-only) that makes a retry safe.
bool transient(ErrorCode c) {
    return c == ErrorCode::kConnection || c == ErrorCode::kUnavailable ||
           c == ErrorCode::kShuttingDown || c == ErrorCode::kTimeout || c == ErrorCode::kBusy;
}

}  // namespace

// ---- StreamApplier ------------------------------------------------------------------------

Result<Unit> StreamApplier::feed(const Event& ev) {
    if (ev.kind == Event::Kind::kEnd) return Unit{};
    if (ev.kind == Event::Kind::kSnapshot) {
        if (ev.offset == 0) {
            // Always a new snapshot (docs/protocol.md 6.3): a partial one is dropped.
            partial_.clear();
            assembling_ = true;
            snap_index_ = ev.index;
        } else if (!assembling_ || ev.index != snap_index_ || ev.offset != partial_.size()) {
            return make_error(ErrorCode::kInternal,
                              "snapshot chunk of index " + std::to_string(ev.index) +
                                  " at offset " + std::to_string(ev.offset) +
                                  " does not continue the snapshot being assembled (" +
                                  std::to_string(partial_.size()) + " bytes of index " +
                                  std::to_string(assembling_ ? snap_index_ : 0) + ")");
        }
        partial_ += ev.data;
        if (!ev.done) return Unit{};
        assembling_ = false;
        if (!cb_->restore)
            return make_error(ErrorCode::kInternal,
                              "the node sent a snapshot (index " + std::to_string(ev.index) +
                                  ") and the application has no restore callback");
        std::string bytes = std::move(partial_);
        partial_.clear();
        auto r = cb_->restore(bytes, ev.index);
        if (!r) return r.error();
        applied_ = ev.index;
        since_entries_ = since_bytes_ = 0;
        ++restores_;
        return Unit{};
    }
    if (assembling_)
        return make_error(ErrorCode::kInternal,
                          "entry " + std::to_string(ev.index) + " inside snapshot " +
                              std::to_string(snap_index_) + " (its last chunk never came)");
    if (ev.index != applied_ + 1)
        return make_error(ErrorCode::kInternal, "stream gap: entry " + std::to_string(ev.index) +
                                                    " after applied " + std::to_string(applied_) +
                                                    " (not applied)");
    Entry e{ev.index, ev.term, ev.type, ev.data, ev.members};
    cb_->apply(e);
    applied_ = ev.index;
    ++since_entries_;
    since_bytes_ += ev.data.size();
    ++entries_;
    return Unit{};
}

void StreamApplier::reset_partial() {
    assembling_ = false;
    partial_.clear();
}

bool StreamApplier::snapshot_due(const SnapshotPolicy& p) const {
    return (p.every_entries && since_entries_ >= p.every_entries) ||
           (p.every_bytes && since_bytes_ >= p.every_bytes);
}

// ---- ApplyLoop ----------------------------------------------------------------------------

ApplyLoop::ApplyLoop(std::string socket_path, ApplyCallbacks callbacks, ApplyOptions options)
    : socket_(std::move(socket_path)),
      cb_(std::move(callbacks)),
      opts_(std::move(options)),
      applier_(&cb_, opts_.applied),
      applied_(opts_.applied) {}

ApplyLoop::~ApplyLoop() = default;

Result<std::unique_ptr<ApplyLoop>> ApplyLoop::open(const std::string& socket_path,
                                                   ApplyCallbacks callbacks, ApplyOptions options) {
    if (!callbacks.apply) return make_error(ErrorCode::kBadRequest, "apply callback missing");
    std::unique_ptr<ApplyLoop> loop(
        new ApplyLoop(socket_path, std::move(callbacks), std::move(options)));
    Options co;
    co.timeout_ms = loop->opts_.request_timeout_ms;
    co.name = loop->opts_.name;
    auto c = Client::connect(socket_path, co);
    if (!c) return c.error();
    // A state beyond the node's log (the wrong node, or one that lost its data) is refused
    // here: the server would accept the subscription and wait for that index.
    auto st = (*c)->status();
    if (!st) return st.error();
    if (loop->opts_.applied > st->last_index)
        return make_error(ErrorCode::kBadRequest,
                          "applied index " + std::to_string(loop->opts_.applied) +
                              " is beyond the node's last index " + std::to_string(st->last_index));
    auto s = loop->subscribe_on(std::move(*c));
    if (!s) return s.error();
    return loop;
}

Result<Unit> ApplyLoop::subscribe_on(std::unique_ptr<Client> conn) {
    const uint64_t gen = ++generation_;
    // Only queue: apply() must not run inside the client's dispatch (see the file comment).
    auto sub = conn->subscribe(applier_.applied() + 1, [this, gen](const Event& e) {
        if (gen != generation_) return;
        if (e.kind == Event::Kind::kEnd) {
            lost_ = true;
            if (e.error) last_connect_error_ = e.error;
            return;
        }
        queue_.push_back(e);
    });
    if (!sub) {
        --generation_;
        return sub.error();
    }
    conn_ = std::move(conn);
    lost_ = false;
    return Unit{};
}

void ApplyLoop::lose(const Error& why) {
    lost_ = true;
    last_connect_error_ = why;
}

Result<Unit> ApplyLoop::drain() {
    while (!queue_.empty()) {
        Event ev = std::move(queue_.front());
        queue_.pop_front();
        auto r = applier_.feed(ev);
        if (!r) {
            fatal_ = r.error();
            queue_.clear();
            conn_.reset();  // nothing more of this stream is wanted
            return r;
        }
        applied_.store(applier_.applied(), std::memory_order_release);
        if (ev.kind == Event::Kind::kSnapshot && ev.done) stats_.restores = applier_.restores();
        stats_.entries = applier_.entries();
        if (cb_.snapshot && applier_.snapshot_due(opts_.snapshot)) upload_snapshot();
    }
    return Unit{};
}

void ApplyLoop::upload_snapshot() {
    // Counted as taken whatever the outcome: a failed upload is tried again after the next
    // every_entries/every_bytes rather than after every entry.
    applier_.snapshot_taken();
    if (!conn_ || lost_) return;
    const uint64_t index = applier_.applied();
    std::string bytes = cb_.snapshot();
    // chunk 0: the server's max_entry from hello. An upload the node's latest snapshot
    // already covers is answered ok with that snapshot's index (docs/protocol.md): success.
    auto r = conn_->snapshot(index, bytes, 0);
    if (r) {
        ++stats_.snapshots;
        return;
    }
    if (r.error().code == ErrorCode::kConnection) {
        lose(r.error());  // counted as a reconnect, not as a refused upload
        return;
    }
    ++stats_.snapshot_failures;
    stats_.last_snapshot_error = r.error();
}

Result<bool> ApplyLoop::reconnect(Clock::time_point deadline) {
    const auto now = Clock::now();
    if (!lost_since_) {
        // First notice: the old connection and any unfinished snapshot go; events it
        // delivered before the loss were applied by drain() already.
        conn_.reset();
        applier_.reset_partial();
        lost_since_ = now;
        next_attempt_ = now;
        backoff_ms_ = opts_.reconnect_min_ms;
    }
    if (next_attempt_ > now) {
        std::this_thread::sleep_until(std::min(next_attempt_, deadline));
        if (Clock::now() < next_attempt_) return false;
    }
    Options co;
    co.timeout_ms = opts_.request_timeout_ms;
    co.name = opts_.name;
    auto c = Client::connect(socket_, co);
    Result<Unit> s = c ? subscribe_on(std::move(*c)) : Result<Unit>(c.error());
    if (s) {
        ++stats_.reconnects;
        lost_since_.reset();
        return true;
    }
    // Transient by assumption (a subscription beyond the node's log waits for the leader to
    // resend what a restarted follower lost, rather than failing).
    last_connect_error_ = s.error();
    const auto waited = Clock::now() - *lost_since_;
    if (waited >= std::chrono::milliseconds(opts_.reconnect_give_up_ms)) {
        lost_since_.reset();  // the next call starts a new round
        return make_error(ErrorCode::kConnection, "no subscription to " + socket_ + " for " +
                                                      std::to_string(opts_.reconnect_give_up_ms) +
                                                      " ms; last error: " + s.error().to_string());
    }
    next_attempt_ = Clock::now() + std::chrono::milliseconds(backoff_ms_);
    backoff_ms_ = std::min(backoff_ms_ * 2, opts_.reconnect_max_ms);
    return false;
}

Result<Unit> ApplyLoop::step(Clock::time_point deadline) {
    if (fatal_) return *fatal_;
    if (!lost_ && conn_) {
        auto r = conn_->poll(ms_until(deadline));
        if (!r) lose(r.error());  // the client also ended the subscription
    }
    if (auto d = drain(); !d) return d;
    if (lost_ || !conn_) {
        auto r = reconnect(deadline);
        if (!r) return r.error();
        if (*r) return drain();
    }
    return Unit{};
}

Result<Unit> ApplyLoop::poll(int timeout_ms) {
    return step(Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0)));
}

Result<Unit> ApplyLoop::wait_applied(uint64_t index, Clock::time_point deadline) {
    if (auto d = drain(); !d) return d;
    while (applied() < index) {
        if (fatal_) return *fatal_;
        if (Clock::now() >= deadline)
            return make_error(ErrorCode::kTimeout, "applied " + std::to_string(applied()) +
                                                       ", waiting for " + std::to_string(index));
        if (auto r = step(deadline); !r) return r;
    }
    return Unit{};
}

Result<Unit> ApplyLoop::ensure_connected(Clock::time_point deadline) {
    while (lost_ || !conn_) {
        if (fatal_) return *fatal_;
        if (Clock::now() >= deadline)
            return make_error(ErrorCode::kConnection,
                              "not connected to " + socket_ + " before the deadline" +
                                  (last_connect_error_ ? ": " + last_connect_error_->to_string()
                                                       : std::string()));
        if (auto r = step(deadline); !r) return r;
    }
    return Unit{};
}

Result<uint64_t> ApplyLoop::read_barrier(Clock::time_point deadline) {
    int pause_ms = opts_.reconnect_min_ms;
    for (;;) {
        if (auto c = ensure_connected(deadline); !c) return c.error();
        auto ri = conn_->read_index();
        if (ri) {
            if (auto w = wait_applied(*ri, deadline); !w) return w.error();
            return *ri;
        }
        if (!transient(ri.error().code) || Clock::now() >= deadline) return ri.error();
        if (ri.error().code == ErrorCode::kConnection) lose(ri.error());
        // No leader yet (an election after a restart): keep applying while waiting.
        const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(pause_ms));
        while (Clock::now() < until)
            if (auto r = step(until); !r) return r.error();
        pause_ms = std::min(pause_ms * 2, opts_.reconnect_max_ms);
    }
}

Result<Proposed> ApplyLoop::propose(std::string_view data, Clock::time_point deadline) {
    if (auto c = ensure_connected(deadline); !c) return c.error();
    auto p = conn_->propose(data);
    if (!p && p.error().code == ErrorCode::kConnection) lose(p.error());
    (void)drain();  // events that arrived while waiting; an error there is the next call's
    return p;
}

}  // namespace raftd::client
