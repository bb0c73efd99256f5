// Connection (see connection.h): input, output with flow control, timers and closing.
#include "ipc/connection.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "ipc/dispatch.h"

namespace raftd::ipc {

namespace {

FrameLimits frame_limits(const ServerOptions& o) {
    FrameLimits lim;
    lim.max_frame = o.max_frame;
    return lim;
}

Subscriptions::Limits stream_limits(const ServerOptions& o) {
    Subscriptions::Limits lim;
    lim.output_bytes = o.sub_output_bytes;
    lim.snapshot_chunk_bytes = o.snapshot_chunk_bytes;
    return lim;
}

}  // namespace

Connection::Connection(ConnectionOwner& owner, uint64_t id, uv::Pipe pipe)
    : owner_(owner),
      id_(id),
      pipe_(std::move(pipe)),
      dec_(frame_limits(owner.options())),
      subs_(owner.backend(), stream_limits(owner.options())),
      upload_(owner.backend(), owner.finishing()) {}

Status Connection::start() {
    Status s = timer_.init(pipe_.loop());
    if (!s) {
        close("timer init failed");
        return s;
    }
    start_reading();
    return closed_ ? Status::io_error("client " + std::to_string(id_) + ": read_start failed")
                   : Status::ok();
}

void Connection::mark_dirty() {
    if (dirty_ || closed_) return;
    dirty_ = true;
    owner_.wants_flush(weak_from_this());
}

void Connection::send_error(std::optional<uint64_t> rid, Error e) {
    const LeaderHint& leader = owner_.leader();
    if (!e.leader && e.code == ErrorCode::kUnavailable && leader.node != raft::kNoNode)
        e.leader = leader;
    encode_error(out_, rid, e);
    mark_dirty();
}

// ---- input --------------------------------------------------------------------------------

void Connection::start_reading() {
    std::weak_ptr<Connection> weak = weak_from_this();
    Status s = pipe_.read_start(
        [weak](size_t suggested) -> std::span<char> {
            auto c = weak.lock();
            if (!c) return {};
            auto [p, n] = c->dec_.prepare(suggested);
            return {p, n};
        },
        [weak](ssize_t n, std::string_view) {
            if (auto c = weak.lock()) c->on_read(n);
        });
    if (!s) close("read_start failed");
}

void Connection::on_read(ssize_t n) {
    if (closed_) return;
    if (n < 0) {
        if (n != UV_EOF) {
            close("read error");
            return;
        }
        // Half-close: answer what was asked, end subscriptions, then close.
        eof_ = true;
        (void)pipe_.read_stop();
        subs_.clear();
        upload_.abort();
        process_input();
        update_timer(false);
        maybe_finish();
        return;
    }
    dec_.commit(static_cast<size_t>(n));
    process_input();
    update_timer(true);
}

void Connection::process_input() {
    while (!closed_ && !fatal_ && !paused_) {
        FrameDecoder::Decoded d = dec_.next();
        if (d.kind == FrameDecoder::Kind::kNeedMore) break;
        if (d.kind == FrameDecoder::Kind::kTooLarge) {
            ++counters().bad_frames;
            send_error(std::nullopt, Error{ErrorCode::kTooLarge, d.error, std::nullopt});
            // The stream cannot be resynchronised: write the error, then close.
            fatal_ = true;
            (void)pipe_.read_stop();
            update_timer(false);
            break;
        }
        if (d.kind == FrameDecoder::Kind::kBadFrame) {
            ++counters().bad_frames;
            send_error(std::nullopt, Error{ErrorCode::kBadFrame, d.error, std::nullopt});
        } else {
            dispatch(*this, d.frame);
        }
        after_output_change();
    }
    if (closed_) return;
    dec_.trim();
}

// ---- output -------------------------------------------------------------------------------

void Connection::flush() {
    write_out();
    after_output_change();
}

void Connection::write_out() {
    // A write that completes at once runs the follow-ups of a completed write here, and they
    // may queue more output (a subscription reading on); nothing would wake the loop for that
    // output, so it is written in the same call. After a few rounds the write is queued in
    // libuv, whose completion continues the stream without starving other connections.
    for (int round = 0;; ++round) {
        dirty_ = false;
        if (closed_ || out_.empty()) return;
        auto buf = std::make_shared<OutBuffer>(std::move(out_));
        out_ = OutBuffer();
        std::vector<uv_buf_t> bufs;
        for (std::string_view v : buf->pieces())
            bufs.push_back(
                uv_buf_init(const_cast<char*>(v.data()), static_cast<unsigned>(v.size())));
        const uint64_t n = buf->size();
        writing_ += n;
        ++counters().writes;
        counters().frames_out += buf->frames();
        std::weak_ptr<Connection> weak = weak_from_this();
        auto on_done = [weak, n](int status) {
            if (auto c = weak.lock()) c->on_written(n, status);
        };
        if (round >= 8) {
            if (!pipe_.write(bufs, buf, on_done)) close("write failed");
            return;
        }
        auto sent = pipe_.write_now_or_queue(bufs, buf, on_done);
        if (!sent) {
            close("write failed");
            return;
        }
        if (!*sent) return;
        on_written(n, 0);
    }
}

void Connection::on_written(uint64_t n, int status) {
    writing_ -= n;
    if (closed_) return;
    if (status != 0) {
        close("write error");
        return;
    }
    // Output drained a little: subscriptions may read on, paused reading may resume.
    pump();
    after_output_change();
    if (!paused_) process_input();
    update_timer(true);
    maybe_finish();
}

void Connection::pump() {
    if (closed_) return;
    if (subs_.pump(out_, writing_)) mark_dirty();
}

void Connection::after_output_change() {
    if (closed_) return;
    const uint64_t q = queued();
    const uint64_t max = options().max_output_bytes;
    if (!paused_ && q > max) {
        paused_ = true;
        if (!eof_ && !fatal_) (void)pipe_.read_stop();
        update_timer(false);
    } else if (paused_ && q <= max / 2) {
        paused_ = false;
        if (!eof_ && !fatal_) start_reading();
        update_timer(false);
    }
}

// ---- timers and closing -------------------------------------------------------------------

void Connection::update_timer(bool progress) {
    if (closed_) return;
    TimerMode want = TimerMode::kNone;
    uint64_t ms = 0;
    if (paused_ || (fatal_ && queued() > 0)) {
        want = TimerMode::kStall;
        ms = options().stall_timeout_ms;
    } else if (!eof_ && dec_.buffered() > 0) {
        want = TimerMode::kPartial;
        ms = options().partial_frame_timeout_ms;
    }
    if (want == TimerMode::kNone) {
        if (timer_mode_ != TimerMode::kNone) (void)timer_.stop();
        timer_mode_ = want;
        return;
    }
    if (want == timer_mode_ && !progress) return;
    timer_mode_ = want;
    std::weak_ptr<Connection> weak = weak_from_this();
    (void)timer_.start(ms, 0, [weak, want] {
        auto c = weak.lock();
        if (!c) return;
        c->close(want == TimerMode::kStall ? "client stopped reading its output"
                                           : "partial frame timed out");
    });
}

void Connection::maybe_finish() {
    if (closed_) return;
    if (fatal_ && queued() == 0) {
        close("oversized frame length");
        return;
    }
    if (eof_ && pending_.empty() && !upload_.active() && queued() == 0)
        close("client closed its side");
}

void Connection::shut_down(const Error& why) {
    if (closed_) return;
    const size_t before = out_.size();
    subs_.end_all(out_, why);
    if (out_.size() != before) mark_dirty();
    write_out();
    // Close once the final output is written (shutdown completes after queued writes), or
    // when the owner force-closes or discards it first.
    std::weak_ptr<Connection> weak = weak_from_this();
    if (!pipe_.shutdown([weak](int) {
            if (auto c = weak.lock()) c->close("server closed");
        }))
        close("server closed");
}

void Connection::close(const char* why) {
    if (closed_) return;
    closed_ = true;
    spdlog::debug("client {}: closing: {}", id_, why);
    subs_.clear();
    upload_.abort();
    timer_.close();
    pipe_.close();
    owner_.closed(id_);
}

void Connection::discard() {
    closed_ = true;
    timer_.close();
    pipe_.close();
}

}  // namespace raftd::ipc
