// RAII owners for libuv handles, and libuv error codes as raftd::Status.
//
// Owns: one heap block per handle holding the uv handle and the owner's callbacks. The block
// is freed only in libuv's close callback, so an owner can be destroyed at any moment (even
// inside one of its own callbacks) without libuv touching freed memory.
// Never: run a user callback after close() (write/connect completions cancelled by the
// close are swallowed; their keep-alive objects are still released), or throw.
//
// Rules for users: init() once, then use; close() is safe twice and is also done by the
// destructor; after close() the wrapper is empty and its callbacks are dropped. A Loop
// must outlive every handle initialised on it, and Loop::close() (or its destructor) runs
// the pending close callbacks, so tests can assert that uv_loop_close() succeeded.
//
// Thread rules: everything on the loop's thread, except Async::send().
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "raft/status.h"

namespace raftd::ipc::uv {

// "context: message (EADDRINUSE)" with a Code chosen from the errno class.
Status to_status(int uv_err, std::string_view context);

// Owns a uv_loop_t.
class Loop {
  public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // Non-ok when uv_loop_init failed; the loop must not be used then.
    const Status& init_status() const { return init_; }
    uv_loop_t* get() { return loop_.get(); }
    operator uv_loop_t*() { return loop_.get(); }  // NOLINT: passed to init() everywhere

    // uv_run(UV_RUN_DEFAULT): returns when stop() is called or nothing is left to do.
    void run();
    // One iteration, blocking for I/O when something is active. False when nothing is left.
    bool run_once();
    // Runs iterations until pred() holds (checked before each). Returns false if the loop
    // ran out of work first or `timeout_ms` of loop time passed: a failsafe for tests, not a
    // synchronisation device.
    bool run_until(const std::function<bool()>& pred, uint64_t timeout_ms = 20000);
    void stop();
    uint64_t now() const;

    // Runs the close callbacks of handles already closed, then uv_loop_close(). Non-ok
    // (kBusy) when a handle is still open, naming how many.
    Status close();

  private:
    std::unique_ptr<uv_loop_t> loop_;
    Status init_;
    bool closed_ = false;
};

// Base of every handle owner.
class Handle {
  public:
    Handle() = default;
    Handle(Handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Handle& operator=(Handle&& o) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { close(); }

    // Drops the callbacks and closes the handle; its memory goes in the close callback.
    void close();
    bool is_open() const { return s_ != nullptr; }
    uv_handle_t* raw() const;
    uv_loop_t* loop() const;
    void ref();
    void unref();

    struct State;  // defined in uv.cpp; public so the C callbacks can reach it

  protected:
    State* s_ = nullptr;
};

// Stream operations common to Tcp and Pipe.
class Stream : public Handle {
  public:
    // Returns the buffer to read into (empty span: no memory, libuv reports UV_ENOBUFS).
    using AllocFn = std::function<std::span<char>(size_t suggested)>;
    // nread > 0: bytes [data, data+nread) arrived in the last allocated buffer.
    // nread < 0: a libuv error (UV_EOF at end of stream); reading has stopped being useful.
    using ReadFn = std::function<void(ssize_t nread, std::string_view data)>;
    using StatusFn = std::function<void(int status)>;  // 0 or a libuv error

    Status listen(int backlog, StatusFn on_connection);
    // Accepts a pending connection into `client`, which must be init()ed on the same loop.
    Status accept(Stream& client);
    Status read_start(AllocFn alloc, ReadFn read);
    Status read_stop();
    bool is_reading() const;
    // Queues one write of all `bufs` (gathered). `keep` is held until libuv is done with
    // the bytes (also when the write is cancelled by close()); `done` runs on completion
    // unless the stream was closed first.
    Status write(std::span<const uv_buf_t> bufs, std::shared_ptr<void> keep, StatusFn done);
    // Like write(), but first tries to write at once: true when everything went out (then
    // `done` is not called and `keep` is released), false when the rest was queued as write()
    // does. Saves libuv's write request and the epoll_ctl it costs on every write.
    Result<bool> write_now_or_queue(std::span<const uv_buf_t> bufs, std::shared_ptr<void> keep,
                                    StatusFn done);
    // Bytes queued in libuv that were not written yet.
    size_t write_queue_size() const;
    Status shutdown(StatusFn done);
    // The OS descriptor, or -1.
    int fileno() const;

  protected:
    uv_stream_t* stream() const;
};

class Tcp : public Stream {
  public:
    Status init(uv_loop_t* loop);
    Status open(int fd);
    Status bind(const struct sockaddr* addr, unsigned flags = 0);
    Status connect(const struct sockaddr* addr, StatusFn done);
    Status nodelay(bool on);
    Status keepalive(bool on, unsigned delay_s);
    uv_tcp_t* tcp() const;
};

class Pipe : public Stream {
  public:
    Status init(uv_loop_t* loop, bool ipc = false);
    Status open(int fd);
    Status bind(const std::string& path);
    Status connect(const std::string& path, StatusFn done);
    Status chmod(int uv_mode_flags);
    uv_pipe_t* pipe() const;
};

class Timer : public Handle {
  public:
    Status init(uv_loop_t* loop);
    // Runs `cb` after timeout_ms, then every repeat_ms if non-zero. Replaces any earlier cb.
    Status start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb);
    Status stop();
    Status again();
};

class Async : public Handle {
  public:
    Status init(uv_loop_t* loop, std::function<void()> cb);
    // Thread-safe wake-up; several sends may coalesce into one callback. Callers on other
    // threads must ensure the Async outlives their send() (close() is loop-thread only).
    Status send();
};

// Runs `cb` once per loop iteration, right before (Prepare) or right after (Check) the loop
// polls for I/O: where output queued by any callback is written in one batch.
class Prepare : public Handle {
  public:
    Status init(uv_loop_t* loop);
    Status start(std::function<void()> cb);
    Status stop();
};

class Check : public Handle {
  public:
    Status init(uv_loop_t* loop);
    Status start(std::function<void()> cb);
    Status stop();
};

class Signal : public Handle {
  public:
    Status init(uv_loop_t* loop);
    Status start(int signum, std::function<void(int signum)> cb);
    Status stop();
};

}  // namespace raftd::ipc::uv
