// Connection: one client of the server: its socket, input decoding, output queue with flow
// control, the ids of its requests in flight, its subscriptions and its snapshot upload.
//
// Owns: all of the above, behind methods; requests go to dispatch.h, streams to
// subscription.h, uploads to upload.h. Output is encoded into the connection's OutBuffer as
// replies and events are produced and written when the owner calls flush() (once per loop
// iteration), as one gathered write.
// Never: read while more than max_output_bytes are queued (it resumes below half), keep a
// stalled client (no output progress for stall_timeout_ms while paused) or a partial frame
// (partial_frame_timeout_ms without new bytes) open, answer a request twice, or destroy
// itself: close() hands it to its owner, which destroys it at the next flush point, never
// inside one of its own callbacks. Backend completions hold a weak_ptr: a reply for a closed
// connection is dropped.
//
// Thread rules: loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_set>

#include "ipc/backend.h"
#include "ipc/frame.h"
#include "ipc/leader_wait.h"
#include "ipc/protocol.h"
#include "ipc/server.h"
#include "ipc/subscription.h"
#include "ipc/upload.h"
#include "ipc/uv.h"

namespace raftd::ipc {

class Connection;

// What a connection needs from the server that owns it.
class ConnectionOwner {
  public:
    virtual Backend& backend() = 0;
    virtual const ServerOptions& options() const = 0;
    // Added to UNAVAILABLE errors that name no leader.
    virtual const LeaderHint& leader() const = 0;
    virtual FinishingWriters& finishing() = 0;
    // Where requests that need a leader wait for one.
    virtual LeaderWait& leader_wait() = 0;
    // The counters a connection advances (requests, bad_frames, writes, frames_out).
    virtual ServerStats& counters() = 0;
    // `c` has output to write at the next flush point.
    virtual void wants_flush(std::weak_ptr<Connection> c) = 0;
    // Connection `id` closed: drop it from the table, destroying it at the next flush point.
    virtual void closed(uint64_t id) = 0;

  protected:
    ~ConnectionOwner() = default;
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    // `pipe` is an accepted connection open on the owner's loop.
    Connection(ConnectionOwner& owner, uint64_t id, uv::Pipe pipe);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Starts reading; non-ok when the connection cannot be served (then it is closed).
    Status start();

    // ---- for the owner ----------------------------------------------------------------------
    uint64_t id() const { return id_; }
    // Output not yet completed by the socket: encoded but not written, plus being written.
    uint64_t queued() const { return out_.size() + writing_; }
    size_t subscription_count() const { return subs_.size(); }
    // Reading stopped because the client does not drain its output (back-pressure).
    bool paused() const { return paused_; }
    // Writes the queued output now (a flush point), then pauses or resumes reading.
    void flush();
    // The commit index advanced (or a snapshot was installed): subscriptions read on.
    void pump();
    // The server is stopping: ends every subscription with `why`, writes the queued output
    // and closes once it was written (the owner force-closes what does not drain).
    void shut_down(const Error& why);
    void close(const char* why);
    // Closes at once, without writing or telling the owner: the owner is being destroyed.
    void discard();

    // ---- for dispatch -----------------------------------------------------------------------
    Backend& backend() { return owner_.backend(); }
    const ServerOptions& options() const { return owner_.options(); }
    ServerStats& counters() { return owner_.counters(); }
    // Request id `rid` awaits a reply or names an active subscription.
    bool id_in_use(uint64_t rid) const { return pending_.count(rid) || subs_.contains(rid); }
    size_t in_flight() const { return pending_.size(); }
    Subscriptions& subscriptions() { return subs_; }
    Upload& upload() { return upload_; }
    LeaderWait& leader_wait() { return owner_.leader_wait(); }

    template <typename T>
    void reply(uint64_t rid, const T& value) {
        encode_reply(out_, rid, value);
        mark_dirty();
    }
    void send_error(std::optional<uint64_t> rid, Error e);
    // A completion that answers request `rid` with encode(out, rid, value) or its error;
    // `rid` is in flight until it runs.
    template <typename T, typename Encode>
    Done<T> answer_later(uint64_t rid, Encode encode);
    template <typename T>
    Done<T> reply_later(uint64_t rid) {
        return answer_later<T>(rid,
                               [](OutBuffer& o, uint64_t i, const T& v) { encode_reply(o, i, v); });
    }

  private:
    enum class TimerMode { kNone, kPartial, kStall };

    void mark_dirty();
    void start_reading();
    void on_read(ssize_t n);
    void process_input();
    void write_out();
    void on_written(uint64_t n, int status);
    void after_output_change();
    // Arms the one timer for the connection's state: kStall while output is paused (or a
    // fatal error is being written), kPartial while part of a frame is buffered. `progress`
    // restarts it: bytes arrived, or a write completed.
    void update_timer(bool progress);
    void maybe_finish();

    ConnectionOwner& owner_;
    const uint64_t id_;
    uv::Pipe pipe_;
    uv::Timer timer_;
    FrameDecoder dec_;
    OutBuffer out_;
    uint64_t writing_ = 0;                  // bytes handed to libuv, not yet completed
    std::unordered_set<uint64_t> pending_;  // request ids awaiting a reply
    Subscriptions subs_;
    Upload upload_;
    bool paused_ = false;  // reading stopped for output back-pressure
    bool eof_ = false;     // the client half-closed
    bool fatal_ = false;   // close once the output is flushed (TOO_LARGE)
    bool closed_ = false;
    bool dirty_ = false;  // registered with the owner for the next flush point
    TimerMode timer_mode_ = TimerMode::kNone;
};

template <typename T, typename Encode>
Done<T> Connection::answer_later(uint64_t rid, Encode encode) {
    pending_.insert(rid);
    std::weak_ptr<Connection> weak = weak_from_this();
    return Done<T>([weak, rid, encode = std::move(encode)](Outcome<T> r) {
        auto c = weak.lock();
        if (!c || c->closed_) return;  // the client went away: drop the reply
        c->pending_.erase(rid);
        if (r.ok())
            encode(c->out_, rid, r.value());
        else
            c->send_error(rid, r.error());
        c->mark_dirty();
        c->maybe_finish();
    });
}

}  // namespace raftd::ipc
