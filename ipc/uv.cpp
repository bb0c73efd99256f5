#include "ipc/uv.h"

#include <cstdio>
#include <string>

namespace raftd::ipc::uv {

Status to_status(int err, std::string_view context) {
    std::string msg(context);
    msg += ": ";
    msg += uv_strerror(err);
    msg += " (";
    msg += uv_err_name(err);
    msg += ")";
    Code code = Code::kIoError;
    switch (err) {
        case UV_ETIMEDOUT:
            code = Code::kTimeout;
            break;
        case UV_ECANCELED:
            code = Code::kAborted;
            break;
        case UV_EAGAIN:
        case UV_EBUSY:
        case UV_ENOBUFS:
        case UV_ENOMEM:
            code = Code::kBusy;
            break;
        case UV_ENOENT:
            code = Code::kNotFound;
            break;
        case UV_EINVAL:
        case UV_ENAMETOOLONG:
        case UV_EBADF:
            code = Code::kInvalidArgument;
            break;
        case UV_EOF:
        case UV_ECONNREFUSED:
        case UV_ECONNRESET:
        case UV_ECONNABORTED:
        case UV_EPIPE:
        case UV_ENOTCONN:
        case UV_EHOSTUNREACH:
        case UV_ENETUNREACH:
            code = Code::kUnavailable;
            break;
        default:
            break;
    }
    return Status(code, std::move(msg));
}

// ---- Loop ---------------------------------------------------------------------------------

Loop::Loop() : loop_(std::make_unique<uv_loop_t>()) {
    if (int r = uv_loop_init(loop_.get()); r != 0) {
        init_ = to_status(r, "uv_loop_init");
        closed_ = true;
    }
}

Loop::~Loop() {
    if (closed_) return;
    if (Status st = close(); !st) {
        // A handle outlived its loop: freeing the loop would leave libuv pointing at freed
        // memory, so leak it and say so rather than corrupt the heap.
        std::fprintf(stderr, "raftd: %s\n", st.to_string().c_str());
        (void)loop_.release();
    }
}

void Loop::run() {
    uv_run(loop_.get(), UV_RUN_DEFAULT);
}
bool Loop::run_once() {
    return uv_run(loop_.get(), UV_RUN_ONCE) != 0;
}
void Loop::stop() {
    uv_stop(loop_.get());
}
uint64_t Loop::now() const {
    return uv_now(loop_.get());
}

bool Loop::run_until(const std::function<bool()>& pred, uint64_t timeout_ms) {
    if (pred()) return true;
    bool expired = false;
    Timer deadline;
    if (!deadline.init(loop_.get())) return false;
    // Unreferenced: the deadline alone does not keep the loop alive, so an idle loop ends
    // the wait at once instead of sleeping until the deadline.
    deadline.unref();
    if (!deadline.start(timeout_ms, 0, [&expired] { expired = true; })) return false;
    while (!pred()) {
        if (expired) return false;
        if (uv_run(loop_.get(), UV_RUN_ONCE) == 0) return pred();
    }
    return true;
}

Status Loop::close() {
    if (closed_) return Status::ok();
    for (int i = 0; i < 64; ++i) {
        int r = uv_loop_close(loop_.get());
        if (r == 0) {
            closed_ = true;
            return Status::ok();
        }
        // Closing handles finish (and cancelled writes complete) in the next iteration.
        uv_run(loop_.get(), UV_RUN_NOWAIT);
    }
    int open = 0;
    uv_walk(
        loop_.get(),
        [](uv_handle_t* h, void* arg) {
            if (!uv_is_closing(h)) ++*static_cast<int*>(arg);
        },
        &open);
    return Status::busy("uv_loop_close: " + std::to_string(open) + " handle(s) still open");
}

// ---- Handle -------------------------------------------------------------------------------

struct Handle::State {
    virtual ~State() = default;
    virtual uv_handle_t* handle() = 0;
    bool closed = false;  // the owner let go: no user callback may run any more
    bool reading = false;
    // Callbacks of whichever kind of handle this is.
    Stream::AllocFn alloc;
    Stream::ReadFn read;
    Stream::StatusFn connection;
    std::function<void()> fire;
    std::function<void(int)> signal;
};

namespace {

using State = Handle::State;

template <typename H>
struct Box final : State {
    H h{};
    uv_handle_t* handle() override { return reinterpret_cast<uv_handle_t*>(&h); }
};

template <typename T>
State* state_of(T* h) {
    return static_cast<State*>(reinterpret_cast<uv_handle_t*>(h)->data);
}

void on_close(uv_handle_t* h) {
    // The one place handle memory is freed: libuv is done with it now.
    std::unique_ptr<State> owned(static_cast<State*>(h->data));
}

// A request (write, connect, shutdown) outlives nothing: libuv completes or cancels it before
// the handle's close callback, so `owner` is valid whenever the callback runs.
template <typename R>
struct Req {
    R req{};
    State* owner = nullptr;
    std::shared_ptr<void> keep;
    Stream::StatusFn done;
};

template <typename R>
void finish_req(R* r, int status) {
    std::unique_ptr<Req<R>> req(static_cast<Req<R>*>(r->data));
    if (!req->owner->closed && req->done) req->done(status);
}

// Installs a freshly initialised box as the owner's state.
template <typename H>
Status adopt(State*& slot, std::unique_ptr<Box<H>> box, int r, const char* what) {
    if (r != 0) return to_status(r, what);  // never initialised: plain delete is right
    box->h.data = static_cast<State*>(box.get());
    slot = box.release();
    return Status::ok();
}

Status check(int r, std::string_view what) {
    return r == 0 ? Status::ok() : to_status(r, what);
}

Status not_open(const char* what) {
    return Status::invalid_argument(std::string(what) + ": handle is not open");
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
    if (this != &o) {
        close();
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}

void Handle::close() {
    if (!s_) return;
    State* s = std::exchange(s_, nullptr);
    // Callbacks stay allocated until on_close: close() may be running inside one of them.
    s->closed = true;
    if (!uv_is_closing(s->handle())) uv_close(s->handle(), &on_close);
}

uv_handle_t* Handle::raw() const {
    return s_ ? s_->handle() : nullptr;
}
uv_loop_t* Handle::loop() const {
    return s_ ? s_->handle()->loop : nullptr;
}
void Handle::ref() {
    if (s_) uv_ref(s_->handle());
}
void Handle::unref() {
    if (s_) uv_unref(s_->handle());
}

// ---- Stream -------------------------------------------------------------------------------

uv_stream_t* Stream::stream() const {
    return reinterpret_cast<uv_stream_t*>(raw());
}

Status Stream::listen(int backlog, StatusFn on_connection) {
    if (!s_) return not_open("listen");
    s_->connection = std::move(on_connection);
    return check(uv_listen(stream(), backlog,
                           [](uv_stream_t* server, int status) {
                               State* s = state_of(server);
                               if (!s->closed && s->connection) s->connection(status);
                           }),
                 "listen");
}

Status Stream::accept(Stream& client) {
    if (!s_ || !client.s_) return not_open("accept");
    return check(uv_accept(stream(), client.stream()), "accept");
}

Status Stream::read_start(AllocFn alloc, ReadFn read) {
    if (!s_) return not_open("read_start");
    s_->alloc = std::move(alloc);
    s_->read = std::move(read);
    int r = uv_read_start(
        stream(),
        [](uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
            State* s = state_of(h);
            std::span<char> sp;
            if (!s->closed && s->alloc) sp = s->alloc(suggested);
            *buf = uv_buf_init(sp.data(), static_cast<unsigned>(sp.size()));
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
            State* s = state_of(st);
            if (n == 0 || s->closed || !s->read) return;
            s->read(n, n > 0 ? std::string_view(buf->base, n) : std::string_view());
        });
    s_->reading = (r == 0);
    return check(r, "read_start");
}

Status Stream::read_stop() {
    if (!s_) return not_open("read_stop");
    s_->reading = false;
    return check(uv_read_stop(stream()), "read_stop");
}

bool Stream::is_reading() const {
    return s_ && s_->reading;
}

Status Stream::write(std::span<const uv_buf_t> bufs, std::shared_ptr<void> keep, StatusFn done) {
    if (!s_) return not_open("write");
    auto req = std::make_unique<Req<uv_write_t>>();
    req->owner = s_;
    req->keep = std::move(keep);
    req->done = std::move(done);
    req->req.data = req.get();
    int r = uv_write(&req->req, stream(), bufs.data(), static_cast<unsigned>(bufs.size()),
                     [](uv_write_t* w, int status) { finish_req(w, status); });
    if (r != 0) return to_status(r, "write");
    (void)req.release();  // owned by libuv until the callback
    return Status::ok();
}

Result<bool> Stream::write_now_or_queue(std::span<const uv_buf_t> bufs, std::shared_ptr<void> keep,
                                        StatusFn done) {
    if (!s_) return not_open("write");
    // uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, so order is kept.
    int r = uv_try_write(stream(), bufs.data(), static_cast<unsigned>(bufs.size()));
    if (r < 0 && r != UV_EAGAIN) return to_status(r, "write");
    size_t done_bytes = r < 0 ? 0 : static_cast<size_t>(r);
    std::vector<uv_buf_t> rest;
    for (const uv_buf_t& b : bufs) {
        if (done_bytes >= b.len) {
            done_bytes -= b.len;
            continue;
        }
        rest.push_back(uv_buf_init(b.base + done_bytes, static_cast<unsigned>(b.len - done_bytes)));
        done_bytes = 0;
    }
    if (rest.empty()) return true;
    if (Status st = write(rest, std::move(keep), std::move(done)); !st) return st;
    return false;
}

size_t Stream::write_queue_size() const {
    return s_ ? uv_stream_get_write_queue_size(stream()) : 0;
}

Status Stream::shutdown(StatusFn done) {
    if (!s_) return not_open("shutdown");
    auto req = std::make_unique<Req<uv_shutdown_t>>();
    req->owner = s_;
    req->done = std::move(done);
    req->req.data = req.get();
    int r = uv_shutdown(&req->req, stream(),
                        [](uv_shutdown_t* q, int status) { finish_req(q, status); });
    if (r != 0) return to_status(r, "shutdown");
    (void)req.release();
    return Status::ok();
}

int Stream::fileno() const {
    uv_os_fd_t fd = -1;
    if (!s_ || uv_fileno(raw(), &fd) != 0) return -1;
    return fd;
}

// ---- Tcp ----------------------------------------------------------------------------------

Status Tcp::init(uv_loop_t* loop) {
    close();
    auto box = std::make_unique<Box<uv_tcp_t>>();
    int r = uv_tcp_init(loop, &box->h);
    return adopt(s_, std::move(box), r, "uv_tcp_init");
}

uv_tcp_t* Tcp::tcp() const {
    return reinterpret_cast<uv_tcp_t*>(raw());
}

Status Tcp::open(int fd) {
    if (!s_) return not_open("tcp open");
    return check(uv_tcp_open(tcp(), fd), "tcp open");
}

Status Tcp::bind(const struct sockaddr* addr, unsigned flags) {
    if (!s_) return not_open("tcp bind");
    return check(uv_tcp_bind(tcp(), addr, flags), "tcp bind");
}

Status Tcp::connect(const struct sockaddr* addr, StatusFn done) {
    if (!s_) return not_open("tcp connect");
    auto req = std::make_unique<Req<uv_connect_t>>();
    req->owner = s_;
    req->done = std::move(done);
    req->req.data = req.get();
    int r = uv_tcp_connect(&req->req, tcp(), addr,
                           [](uv_connect_t* c, int status) { finish_req(c, status); });
    if (r != 0) return to_status(r, "tcp connect");
    (void)req.release();
    return Status::ok();
}

Status Tcp::nodelay(bool on) {
    if (!s_) return not_open("tcp nodelay");
    return check(uv_tcp_nodelay(tcp(), on ? 1 : 0), "tcp nodelay");
}

Status Tcp::keepalive(bool on, unsigned delay_s) {
    if (!s_) return not_open("tcp keepalive");
    return check(uv_tcp_keepalive(tcp(), on ? 1 : 0, delay_s), "tcp keepalive");
}

// ---- Pipe ---------------------------------------------------------------------------------

Status Pipe::init(uv_loop_t* loop, bool ipc) {
    close();
    auto box = std::make_unique<Box<uv_pipe_t>>();
    int r = uv_pipe_init(loop, &box->h, ipc ? 1 : 0);
    return adopt(s_, std::move(box), r, "uv_pipe_init");
}

uv_pipe_t* Pipe::pipe() const {
    return reinterpret_cast<uv_pipe_t*>(raw());
}

Status Pipe::open(int fd) {
    if (!s_) return not_open("pipe open");
    return check(uv_pipe_open(pipe(), fd), "pipe open");
}

Status Pipe::bind(const std::string& path) {
    if (!s_) return not_open("pipe bind");
    return check(uv_pipe_bind(pipe(), path.c_str()), "bind " + path);
}

Status Pipe::connect(const std::string& path, StatusFn done) {
    if (!s_) return not_open("pipe connect");
    auto req = std::make_unique<Req<uv_connect_t>>();
    req->owner = s_;
    req->done = std::move(done);
    req->req.data = req.get();
    // uv_pipe_connect reports every failure through the callback.
    uv_pipe_connect(&req->req, pipe(), path.c_str(),
                    [](uv_connect_t* c, int status) { finish_req(c, status); });
    (void)req.release();
    return Status::ok();
}

Status Pipe::chmod(int flags) {
    if (!s_) return not_open("pipe chmod");
    return check(uv_pipe_chmod(pipe(), flags), "pipe chmod");
}

// ---- Timer, Async, Signal -----------------------------------------------------------------

Status Timer::init(uv_loop_t* loop) {
    close();
    auto box = std::make_unique<Box<uv_timer_t>>();
    int r = uv_timer_init(loop, &box->h);
    return adopt(s_, std::move(box), r, "uv_timer_init");
}

Status Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb) {
    if (!s_) return not_open("timer start");
    s_->fire = std::move(cb);
    return check(uv_timer_start(
                     reinterpret_cast<uv_timer_t*>(raw()),
                     [](uv_timer_t* t) {
                         State* s = state_of(t);
                         if (!s->closed && s->fire) s->fire();
                     },
                     timeout_ms, repeat_ms),
                 "timer start");
}

Status Timer::stop() {
    if (!s_) return not_open("timer stop");
    return check(uv_timer_stop(reinterpret_cast<uv_timer_t*>(raw())), "timer stop");
}

Status Timer::again() {
    if (!s_) return not_open("timer again");
    return check(uv_timer_again(reinterpret_cast<uv_timer_t*>(raw())), "timer again");
}

Status Async::init(uv_loop_t* loop, std::function<void()> cb) {
    close();
    auto box = std::make_unique<Box<uv_async_t>>();
    box->fire = std::move(cb);
    int r = uv_async_init(loop, &box->h, [](uv_async_t* a) {
        State* s = state_of(a);
        if (!s->closed && s->fire) s->fire();
    });
    return adopt(s_, std::move(box), r, "uv_async_init");
}

Status Async::send() {
    if (!s_) return not_open("async send");
    return check(uv_async_send(reinterpret_cast<uv_async_t*>(raw())), "async send");
}

Status Prepare::init(uv_loop_t* loop) {
    close();
    auto box = std::make_unique<Box<uv_prepare_t>>();
    int r = uv_prepare_init(loop, &box->h);
    return adopt(s_, std::move(box), r, "uv_prepare_init");
}

Status Prepare::start(std::function<void()> cb) {
    if (!s_) return not_open("prepare start");
    s_->fire = std::move(cb);
    return check(uv_prepare_start(reinterpret_cast<uv_prepare_t*>(raw()),
                                  [](uv_prepare_t* h) {
                                      State* s = state_of(h);
                                      if (!s->closed && s->fire) s->fire();
                                  }),
                 "prepare start");
}

Status Prepare::stop() {
    if (!s_) return not_open("prepare stop");
    return check(uv_prepare_stop(reinterpret_cast<uv_prepare_t*>(raw())), "prepare stop");
}

Status Check::init(uv_loop_t* loop) {
    close();
    auto box = std::make_unique<Box<uv_check_t>>();
    int r = uv_check_init(loop, &box->h);
    return adopt(s_, std::move(box), r, "uv_check_init");
}

Status Check::start(std::function<void()> cb) {
    if (!s_) return not_open("check start");
    s_->fire = std::move(cb);
    return check(uv_check_start(reinterpret_cast<uv_check_t*>(raw()),
                                [](uv_check_t* h) {
                                    State* s = state_of(h);
                                    if (!s->closed && s->fire) s->fire();
                                }),
                 "check start");
}

Status Check::stop() {
    if (!s_) return not_open("check stop");
    return check(uv_check_stop(reinterpret_cast<uv_check_t*>(raw())), "check stop");
}

Status Signal::init(uv_loop_t* loop) {
    close();
    auto box = std::make_unique<Box<uv_signal_t>>();
    int r = uv_signal_init(loop, &box->h);
    return adopt(s_, std::move(box), r, "uv_signal_init");
}

Status Signal::start(int signum, std::function<void(int)> cb) {
    if (!s_) return not_open("signal start");
    s_->signal = std::move(cb);
    return check(uv_signal_start(
                     reinterpret_cast<uv_signal_t*>(raw()),
                     [](uv_signal_t* h, int sig) {
                         State* s = state_of(h);
                         if (!s->closed && s->signal) s->signal(sig);
                     },
                     signum),
                 "signal start");
}

Status Signal::stop() {
    if (!s_) return not_open("signal stop");
    return check(uv_signal_stop(reinterpret_cast<uv_signal_t*>(raw())), "signal stop");
}

}  // namespace raftd::ipc::uv
