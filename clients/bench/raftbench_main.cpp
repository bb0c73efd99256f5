// raftbench: a load generator speaking raftd's public client protocol (docs/protocol.md).
// Closed loop (--clients x --pipeline requests in flight) or open loop (--rate: requests
// are due at fixed times and latency counts from when each was due, so a stalled server
// cannot hide its stall by slowing the generator: no coordinated omission). Reports
// throughput, latency percentiles, CPU per entry of every raftd (from /proc) and WAL syncs
// per entry (from `status`). `--serve-raw PATH` runs the raw Unix-socket ping-pong server
// the IPC ping is compared against. See docs/performance.md.
//
// Owns: its connections and one epoll loop on one thread (the generator shares the
// machine with the servers it measures, so it stays single-threaded and batches writes).
// Never: retries a failed proposal (that could commit twice) or reads raftd's internals.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "clients/bench/histogram.h"
#include "clients/bench/wire.h"

namespace raftd::bench {
namespace {

int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Options {
    std::vector<std::string> sockets;
    bool leader_only = false;
    std::string op = "propose";
    int clients = 1;
    int pipeline = 1;
    size_t size = 256;
    uint64_t count = 0;
    double duration = 0;
    double warmup = 0;
    double rate = 0;
    std::vector<int> pids;
    bool json = false;
    std::string label;
    std::string serve_raw;
    double wait_leader = 0;
    std::string raw_fsync;
    bool tcp_rtt = false;
    bool session = false;
};

// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
std::optional<double> cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t close = s.rfind(')');  // the command name may contain spaces
    if (close == std::string::npos) return std::nullopt;
    std::istringstream in(s.substr(close + 2));
    std::string tok;
    double ticks = 0;
    for (int field = 3; field <= 15 && in >> tok; field++) {
        if (field == 14 || field == 15) ticks += std::stod(tok);  // utime, stime
    }
    return ticks / double(sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One client connection: requests in flight are tracked in a ring indexed by id, which is
// safe because ids grow by one and fewer than kWindow are ever in flight.
struct Conn {
    static constexpr uint64_t kWindow = 1000;  // below the protocol's 1024 in-flight limit
    int fd = -1;
    uint64_t index = 0;       // position in Driver::conns_, the epoll cookie
    bool want_write = false;  // EPOLLOUT armed
    ipc::FrameDecoder dec;
    std::string out;
    size_t out_off = 0;
    uint64_t next_id = 1;
    uint64_t inflight = 0;
    uint64_t pending = 0;  // open loop: due but the window is full
    std::vector<int64_t> due_at = std::vector<int64_t>(kWindow, 0);
    std::vector<int64_t> backlog;  // open loop: due times not yet sent
    size_t backlog_head = 0;
};

class Driver {
  public:
    explicit Driver(const Options& o) : o_(o) {
        std::string payload(o.size, '\0');
        std::mt19937_64 rng(1);
        for (auto& c : payload)
            c = char(rng());
        if (o.op == "propose")
            request_ = ipc::ProposeRequest{raft::Payload(std::move(payload))};
        else
            request_ = ipc::PingRequest{};
    }

    Status connect_all(const std::vector<std::string>& sockets) {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < o_.clients; i++) {
            auto fd = connect_unix(sockets[size_t(i) % sockets.size()]);
            if (!fd) return fd.status();
            fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);
            auto c = std::make_unique<Conn>();
            c->fd = *fd;
            c->index = uint64_t(i);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = uint64_t(i);
            epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
            conns_.push_back(std::move(c));
        }
        return Status::ok();
    }

    // Runs warm-up then measurement. Returns false on a connection failure.
    Status run() {
        const int64_t start = now_ns();
        measure_from_ = start + int64_t(o_.warmup * 1e9);
        stop_sending_at_ = o_.duration > 0 ? measure_from_ + int64_t(o_.duration * 1e9) : INT64_MAX;
        to_send_ = o_.count > 0 ? o_.count : UINT64_MAX;
        warm_ = o_.warmup > 0;
        const int64_t interval = o_.rate > 0 ? int64_t(1e9 / o_.rate) : 0;
        next_due_ = start;
        if (o_.rate <= 0) {
            for (auto& c : conns_)
                for (int k = 0; k < o_.pipeline && can_send(); k++)
                    send_one(*c, now_ns());
        }
        flush_all();
        std::vector<epoll_event> evs(64);
        int64_t drain_deadline = 0;
        while (true) {
            int64_t now = now_ns();
            if (warm_ && now >= measure_from_) begin_measuring(now);
            if (o_.rate > 0) {
                // Open loop: every request due by now is issued, whatever the server does.
                size_t rr = 0;
                while (next_due_ <= now && can_send()) {
                    Conn& c = *conns_[rr_++ % conns_.size()];
                    if (c.inflight < Conn::kWindow - 1 && c.backlog_head == c.backlog.size())
                        send_one(c, next_due_);
                    else
                        c.backlog.push_back(next_due_);
                    next_due_ += interval;
                    if (++rr > 100000) break;  // keep the loop responsive
                }
                flush_all();
            }
            bool sending_over = !can_send_ignoring_time() || now >= stop_sending_at_;
            if (sending_over && total_inflight_ == 0 && backlog_total() == 0) break;
            if (sending_over && drain_deadline == 0) drain_deadline = now + 10'000'000'000;
            if (drain_deadline && now > drain_deadline) {
                std::fprintf(stderr,
                             "raftbench: %" PRIu64 " requests unanswered 10 s after the end\n",
                             total_inflight_);
                break;
            }
            // Open loop sleeps exactly until the next request is due (nanosecond timeout), so
            // the generator neither spins nor sends late.
            int64_t wait_ns = 100'000'000;
            if (o_.rate > 0 && !sending_over)
                wait_ns = std::clamp<int64_t>(next_due_ - now, 0, wait_ns);
            timespec ts{time_t(wait_ns / 1000000000), long(wait_ns % 1000000000)};
            int n = epoll_pwait2(ep_, evs.data(), int(evs.size()), &ts, nullptr);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Status::io_error(std::string("epoll_wait: ") + std::strerror(errno));
            for (int i = 0; i < n; i++) {
                Conn& c = *conns_[evs[size_t(i)].data.u64];
                if (evs[size_t(i)].events & EPOLLOUT) flush(c);
                if (evs[size_t(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                    if (Status st = read_replies(c); !st) return st;
                }
            }
            flush_all();
        }
        if (warm_) begin_measuring(now_ns());  // warm-up longer than the run: measure nothing
        end_ = last_reply_ > measure_from_ ? last_reply_ : now_ns();
        return Status::ok();
    }

    const LogLinearHistogram& hist() const { return hist_; }
    uint64_t ok_count() const { return ok_; }
    const std::map<std::string, uint64_t>& errors() const { return errors_; }
    double seconds() const { return double(end_ - measure_from_) / 1e9; }

    // Hooks called when measurement starts, for the CPU and counter snapshots.
    std::function<void()> on_measure_start;

  private:
    bool can_send() const { return sent_ < to_send_ && now_ns() < stop_sending_at_; }
    bool can_send_ignoring_time() const { return sent_ < to_send_; }
    uint64_t backlog_total() const {
        uint64_t n = 0;
        for (auto& c : conns_)
            n += c->backlog.size() - c->backlog_head;
        return n;
    }

    void begin_measuring(int64_t now) {
        warm_ = false;
        measure_from_ = now;
        hist_.reset();
        ok_ = 0;
        errors_.clear();
        if (on_measure_start) on_measure_start();
    }

    void send_one(Conn& c, int64_t due) {
        uint64_t id = c.next_id++;
        c.due_at[id % Conn::kWindow] = due;
        // --session: each connection is one client session, its request ids the seqs.
        if (o_.session)
            if (auto* p = std::get_if<ipc::ProposeRequest>(&request_))
                p->session = {session_base_ + c.index + 1, id};
        ipc::encode_request(scratch_, id, request_);
        scratch_.append_to(c.out);
        scratch_.clear();
        c.inflight++;
        total_inflight_++;
        sent_++;
    }

    void flush_all() {
        for (auto& c : conns_)
            if (c->out.size() > c->out_off) flush(*c);
    }

    void flush(Conn& c) {
        while (c.out_off < c.out.size()) {
            ssize_t n = ::write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
            if (n > 0) {
                c.out_off += size_t(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            // EAGAIN: wait for EPOLLOUT. Other errors surface as EPOLLERR/EPOLLHUP on read.
            arm_write(c, true);
            return;
        }
        c.out.clear();
        c.out_off = 0;
        arm_write(c, false);
    }

    // epoll_ctl only when the interest changes: one syscall per flush would cost as much as
    // the write itself.
    void arm_write(Conn& c, bool on) {
        if (c.want_write == on) return;
        c.want_write = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u64 = c.index;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    Status read_replies(Conn& c) {
        for (;;) {
            auto [buf, cap] = c.dec.prepare();
            ssize_t n = ::read(c.fd, buf, cap);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n <= 0) return Status::io_error("raftd closed a client connection");
            c.dec.commit(size_t(n));
            if (size_t(n) < cap) break;
        }
        const int64_t now = now_ns();
        for (;;) {
            auto d = c.dec.next();
            if (d.kind == ipc::FrameDecoder::Kind::kNeedMore) break;
            if (d.kind != ipc::FrameDecoder::Kind::kFrame)
                return Status::corruption("bad frame from raftd: " + d.error);
            const ipc::ReplyHead head = ipc::decode_reply_head(d.frame.root());
            if (!head.id || head.event) continue;
            int64_t due = c.due_at[*head.id % Conn::kWindow];
            std::string code = error_code(d.frame.root(), head);
            c.inflight--;
            total_inflight_--;
            if (due >= measure_from_ && !warm_) {
                if (code.empty()) {
                    hist_.record(uint64_t(now - due));
                    ok_++;
                } else {
                    errors_[code]++;
                }
                last_reply_ = now;
            }
            // Closed loop: one reply frees one slot. Open loop: a backlogged request goes.
            if (o_.rate <= 0) {
                if (can_send()) send_one(c, now);
            } else if (c.backlog_head < c.backlog.size()) {
                send_one(c, c.backlog[c.backlog_head++]);
                if (c.backlog_head == c.backlog.size()) {
                    c.backlog.clear();
                    c.backlog_head = 0;
                }
            }
        }
        return Status::ok();
    }

    const Options& o_;
    ipc::Request request_;  // every request sent is this one with its own id
    // --session: client ids of this run (a fresh range each run, so runs never collide).
    uint64_t session_base_ = (std::random_device{}() | 1ull) << 20;
    ipc::OutBuffer scratch_;  // one encoded request on its way into a Conn's `out`
    int ep_ = -1;
    std::vector<std::unique_ptr<Conn>> conns_;
    LogLinearHistogram hist_;
    uint64_t ok_ = 0, sent_ = 0, to_send_ = 0, total_inflight_ = 0;
    std::map<std::string, uint64_t> errors_;
    int64_t measure_from_ = 0, stop_sending_at_ = 0, end_ = 0, last_reply_ = 0, next_due_ = 0;
    size_t rr_ = 0;
    bool warm_ = false;
};

// The baseline for IPC ping: a server doing the least a framed Unix-socket server can do
// (read, find whole frames, answer each with a fixed 10-byte {"id":…,"ok":true}-sized frame).
int serve_raw(const std::string& path) {
    ::unlink(path.c_str());
    int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(ls, 512) != 0) {
        std::fprintf(stderr, "raftbench: cannot listen on %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = ls;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    std::map<int, std::string> inbuf;
    // The reply echoes the request's id: raftbench's ping is {"op":"ping","id":N} with the
    // id last, so the bytes after the "id" key are copied verbatim.
    static const char kHead[] = "\x82\xa2id";
    static const char kTail[] = "\xa2ok\xc3";
    std::vector<epoll_event> evs(64);
    std::vector<char> buf(1 << 16);
    for (;;) {
        int n = epoll_wait(ep, evs.data(), int(evs.size()), -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[size_t(i)].data.fd;
            if (fd == ls) {
                int c;
                while ((c = ::accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t r = ::read(fd, buf.data(), buf.size());
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                ::close(fd);
                inbuf.erase(fd);
                continue;
            }
            std::string& in = inbuf[fd];
            in.append(buf.data(), size_t(r));
            std::string out;
            size_t off = 0;
            while (in.size() - off >= 4) {
                uint32_t len = ipc::read_be32(in.data() + off);
                if (in.size() - off - 4 < len) break;
                std::string_view body(in.data() + off + 4, len);
                size_t k = body.rfind("\xa2id");
                std::string_view id = k == std::string_view::npos ? "\x00" : body.substr(k + 3);
                uint32_t rl = uint32_t(sizeof(kHead) - 1 + id.size() + sizeof(kTail) - 1);
                char hdr[4] = {char(rl >> 24), char(rl >> 16), char(rl >> 8), char(rl)};
                out.append(hdr, 4);
                out.append(kHead, sizeof(kHead) - 1);
                out.append(id);
                out.append(kTail, sizeof(kTail) - 1);
                off += 4 + len;
            }
            in.erase(0, off);
            if (!out.empty() && ::write(fd, out.data(), out.size()) < 0) ::close(fd);
        }
    }
}

// Polls `status` on every socket until all name the same leader; prints that leader's
// socket. For scripts that start a cluster and must wait for it.
int wait_leader(const Options& o) {
    const int64_t deadline = now_ns() + int64_t(o.wait_leader * 1e9);
    std::string last = "no reply yet";
    while (now_ns() < deadline) {
        uint64_t leader = 0;
        std::string leader_socket;
        bool agree = true;
        for (const auto& s : o.sockets) {
            auto f = query_status(s);
            if (!f) {
                last = f.status().message();
                agree = false;
                break;
            }
            if (f->leader == 0 || (leader != 0 && f->leader != leader)) {
                last = s + ": leader " + std::to_string(f->leader);
                agree = false;
                break;
            }
            leader = f->leader;
            if (f->node_id == f->leader) leader_socket = s;
        }
        if (agree && !leader_socket.empty()) {
            std::printf("%s\n", leader_socket.c_str());
            return 0;
        }
        timespec ts{0, 50'000'000};
        nanosleep(&ts, nullptr);
    }
    std::fprintf(stderr, "raftbench: no agreed leader within %.0f s (%s)\n", o.wait_leader,
                 last.c_str());
    return 1;
}

// The baseline for WAL appends: `count` times write `size` bytes and fdatasync, in a file
// under `dir`, twice: appending (the file grows, so each sync also commits the size change
// to the filesystem journal) and then overwriting the same, already written, blocks (a sync
// flushes data only, as in a preallocated WAL segment). Prints both as JSON.
int raw_fsync(const Options& o) {
    std::string path = o.raw_fsync + "/raftbench-fsync.tmp";
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::fprintf(stderr, "raftbench: open %s: %s\n", path.c_str(), std::strerror(errno));
        return 1;
    }
    std::string buf(std::max<size_t>(o.size, 1), 'x');
    uint64_t n = o.count ? o.count : 2000;
    LogLinearHistogram h[2];
    double rate[2];
    for (int pass = 0; pass < 2; pass++) {
        if (::lseek(fd, 0, SEEK_SET) != 0) return 1;
        const int64_t t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            int64_t a = now_ns();
            if (::write(fd, buf.data(), buf.size()) != ssize_t(buf.size()) ||
                ::fdatasync(fd) != 0) {
                std::fprintf(stderr, "raftbench: write/fdatasync: %s\n", std::strerror(errno));
                ::close(fd);
                ::unlink(path.c_str());
                return 1;
            }
            h[pass].record(uint64_t(now_ns() - a));
        }
        rate[pass] = double(n) / (double(now_ns() - t0) / 1e9);
    }
    ::close(fd);
    ::unlink(path.c_str());
    std::printf("{\"op\":\"raw_fsync\",\"size\":%zu,\"ops\":%" PRIu64
                ",\"ops_per_sec\":%.1f,"
                "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"overwrite_ops_per_sec\":%.1f,"
                "\"overwrite_p50_us\":%.1f,\"overwrite_p99_us\":%.1f}\n",
                buf.size(), n, rate[0], double(h[0].quantile(0.5)) / 1e3,
                double(h[0].quantile(0.99)) / 1e3, double(h[0].max()) / 1e3, rate[1],
                double(h[1].quantile(0.5)) / 1e3, double(h[1].quantile(0.99)) / 1e3);
    return 0;
}

// Loopback TCP round trip: one byte back and forth between two threads' sockets with
// TCP_NODELAY, the floor under any peer message exchange on this machine.
int tcp_rtt(const Options& o) {
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(ls, 1) != 0 ||
        ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
        std::fprintf(stderr, "raftbench: loopback listen: %s\n", std::strerror(errno));
        return 1;
    }
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 1;
    int s = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t n = o.count ? o.count : 20000;
    std::thread echo([s, n] {
        char b;
        for (uint64_t i = 0; i < n; i++)
            if (::read(s, &b, 1) != 1 || ::write(s, &b, 1) != 1) return;
    });
    LogLinearHistogram h;
    char b = 'x';
    for (uint64_t i = 0; i < n; i++) {
        int64_t t = now_ns();
        if (::write(c, &b, 1) != 1 || ::read(c, &b, 1) != 1) break;
        h.record(uint64_t(now_ns() - t));
    }
    echo.join();
    ::close(c);
    ::close(s);
    ::close(ls);
    std::printf("{\"op\":\"tcp_rtt\",\"ops\":%" PRIu64 ",\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
                h.count(), double(h.quantile(0.5)) / 1e3, double(h.quantile(0.99)) / 1e3);
    return 0;
}

std::string fmt_us(uint64_t ns) {
    char b[32];
    std::snprintf(b, sizeof(b), "%.1f", double(ns) / 1000.0);
    return b;
}

}  // namespace
}  // namespace raftd::bench

int main(int argc, char** argv) {
    using namespace raftd::bench;
    using raftd::Result;
    using raftd::Status;
    Options o;
    CLI::App app{"raftbench: load generator for raftd's client protocol (docs/performance.md)"};
    app.add_option("--sockets,-s", o.sockets, "raftd client sockets; clients are spread over them")
        ->delimiter(',');
    app.add_flag("--leader-only", o.leader_only,
                 "send only to the socket(s) of the current leader");
    app.add_option("--op", o.op, "propose or ping")->check(CLI::IsMember({"propose", "ping"}));
    app.add_option("--clients,-c", o.clients, "connections")->check(CLI::Range(1, 100000));
    app.add_option("--pipeline,-p", o.pipeline, "requests in flight per connection (closed loop)")
        ->check(CLI::Range(1, 999));
    app.add_option("--size,-b", o.size, "payload bytes per proposal")
        ->check(CLI::Range(0, 64 << 20));
    app.add_option("--count,-n", o.count, "requests to send after warm-up");
    app.add_option("--duration,-d", o.duration, "seconds to send after warm-up");
    app.add_option("--warmup,-w", o.warmup, "seconds of load before measuring");
    app.add_option("--rate,-r", o.rate, "open loop: requests per second in total");
    app.add_option("--pids", o.pids, "extra raftd pids to charge CPU to")->delimiter(',');
    app.add_flag("--json", o.json, "print one JSON object instead of the table");
    app.add_option("--label", o.label, "free text copied into the JSON");
    app.add_option("--serve-raw", o.serve_raw, "run the raw Unix-socket ping-pong server on PATH");
    app.add_option("--wait-leader", o.wait_leader,
                   "poll status until all --sockets agree on a leader (seconds); print its socket");
    app.add_option("--raw-fsync", o.raw_fsync,
                   "baseline: write --size bytes + fdatasync --count times in DIR");
    app.add_flag("--tcp-rtt", o.tcp_rtt, "baseline: loopback TCP one-byte round trips (--count)");
    app.add_flag("--session", o.session,
                 "propose with a session key (client = one per connection, seq = request id)");
    CLI11_PARSE(app, argc, argv);
    if (!o.serve_raw.empty()) return serve_raw(o.serve_raw);
    if (!o.raw_fsync.empty()) return raw_fsync(o);
    if (o.tcp_rtt) return tcp_rtt(o);
    if (o.wait_leader > 0) return wait_leader(o);
    if (o.sockets.empty()) {
        std::fprintf(stderr, "raftbench: --sockets is required\n");
        return 2;
    }
    if (o.count == 0 && o.duration <= 0) o.duration = 5;
    if (o.op == "ping") o.size = 0;  // a ping carries no payload

    // Every socket's raftd: pid (SO_PEERCRED) and counters before the run. The raw
    // ping-pong server answers no status; it is then measured without server facts.
    std::vector<NodeFacts> before;
    std::vector<std::string> targets;
    for (const auto& s : o.sockets) {
        auto f = o.op == "propose" || o.leader_only ? query_status(s)
                                                    : Result<NodeFacts>(Status::not_found(""));
        if (f) {
            before.push_back(*f);
            if (!o.leader_only || f->role == "leader") targets.push_back(s);
        } else {
            if (o.op == "propose") {
                std::fprintf(stderr, "raftbench: %s\n", f.status().message().c_str());
                return 1;
            }
            targets.push_back(s);
        }
    }
    if (targets.empty()) {
        std::fprintf(stderr, "raftbench: no leader among the sockets\n");
        return 1;
    }
    std::vector<int> pids = o.pids;
    for (const auto& f : before)
        if (f.pid > 0 && std::find(pids.begin(), pids.end(), f.pid) == pids.end())
            pids.push_back(f.pid);
    if (o.op == "ping" && pids.empty()) {
        for (const auto& s : targets) {
            if (auto fd = connect_unix(s)) {
                if (auto p = peer_pid(*fd)) pids.push_back(*p);
                ::close(*fd);
            }
        }
    }

    Driver d(o);
    if (Status st = d.connect_all(targets); !st) {
        std::fprintf(stderr, "raftbench: %s\n", st.message().c_str());
        return 1;
    }
    std::vector<double> cpu0(pids.size());
    double self0 = 0;
    auto snapshot_cpu = [&] {
        for (size_t i = 0; i < pids.size(); i++)
            cpu0[i] = cpu_seconds(pids[i]).value_or(0);
        self0 = self_cpu_seconds();
    };
    snapshot_cpu();
    // Counters at the start of measurement (after warm-up).
    std::vector<std::optional<uint64_t>> syncs0;
    auto snapshot_syncs = [&] {
        syncs0.clear();
        for (const auto& s : o.sockets) {
            auto f = o.op == "propose" ? query_status(s) : Result<NodeFacts>(Status::not_found(""));
            syncs0.push_back(f ? f->wal_syncs : std::nullopt);
        }
    };
    if (o.op == "propose") snapshot_syncs();
    d.on_measure_start = [&] {
        snapshot_cpu();
        if (o.op == "propose") snapshot_syncs();
    };
    if (Status st = d.run(); !st) {
        std::fprintf(stderr, "raftbench: %s\n", st.message().c_str());
        return 1;
    }
    const double secs = std::max(1e-9, d.seconds());
    double server_cpu = 0;
    for (size_t i = 0; i < pids.size(); i++)
        server_cpu += cpu_seconds(pids[i]).value_or(cpu0[i]) - cpu0[i];
    const double self_cpu = self_cpu_seconds() - self0;
    std::optional<uint64_t> syncs;
    if (o.op == "propose") {
        uint64_t total = 0;
        bool all = true;
        for (size_t i = 0; i < o.sockets.size(); i++) {
            auto f = query_status(o.sockets[i]);
            if (f && f->wal_syncs && syncs0[i])
                total += *f->wal_syncs - *syncs0[i];
            else
                all = false;
        }
        if (all) syncs = total;
    }

    const auto& h = d.hist();
    const uint64_t ops = d.ok_count();
    uint64_t errs = 0;
    for (auto& [code, n] : d.errors())
        errs += n;
    const double ops_s = double(ops) / secs;
    const double mb_s = ops_s * double(o.size) / 1e6;
    const double cpu_us_per_op = ops ? server_cpu * 1e6 / double(ops) : 0;
    const double ncpu = double(sysconf(_SC_NPROCESSORS_ONLN));
    const double gen_share = (server_cpu + self_cpu) > 0 ? self_cpu / (server_cpu + self_cpu) : 0;
    if (o.json) {
        std::printf(
            "{\"label\":\"%s\",\"op\":\"%s\",\"nodes\":%zu,\"clients\":%d,\"pipeline\":%d,"
            "\"size\":%zu,\"rate\":%.0f,\"seconds\":%.3f,\"ops\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"ops_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
            "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
            "\"server_cpu_s\":%.3f,\"cpu_us_per_op\":%.2f,\"generator_cpu_s\":%.3f,"
            "\"generator_cpu_share\":%.3f,\"machine_cpus\":%.0f,\"wal_syncs_per_op\":",
            o.label.c_str(), o.op.c_str(), o.sockets.size(), o.clients, o.pipeline, o.size, o.rate,
            secs, ops, errs, ops_s, mb_s, double(h.quantile(0.5)) / 1e3,
            double(h.quantile(0.9)) / 1e3, double(h.quantile(0.99)) / 1e3,
            double(h.quantile(0.999)) / 1e3, double(h.max()) / 1e3, h.mean() / 1e3, server_cpu,
            cpu_us_per_op, self_cpu, gen_share, ncpu);
        if (syncs && ops)
            std::printf("%.4f", double(*syncs) / double(ops));
        else
            std::printf("null");
        std::printf(",\"error_codes\":{");
        bool first = true;
        for (auto& [code, n] : d.errors()) {
            std::printf("%s\"%s\":%" PRIu64, first ? "" : ",", code.c_str(), n);
            first = false;
        }
        std::printf("}}\n");
    } else {
        std::printf("%-8s %7s %5s %9s %8s %8s %8s %8s %8s %8s %10s %9s\n", "op", "clients", "pipe",
                    "ops/s", "MB/s", "p50 us", "p90 us", "p99 us", "p99.9", "max us", "cpu us/op",
                    "syncs/op");
        char syncbuf[32] = "n/a";
        if (syncs && ops)
            std::snprintf(syncbuf, sizeof(syncbuf), "%.3f", double(*syncs) / double(ops));
        std::printf("%-8s %7d %5d %9.0f %8.2f %8s %8s %8s %8s %8s %10.1f %9s\n", o.op.c_str(),
                    o.clients, o.rate > 0 ? 0 : o.pipeline, ops_s, mb_s,
                    fmt_us(h.quantile(0.5)).c_str(), fmt_us(h.quantile(0.9)).c_str(),
                    fmt_us(h.quantile(0.99)).c_str(), fmt_us(h.quantile(0.999)).c_str(),
                    fmt_us(h.max()).c_str(), cpu_us_per_op, syncbuf);
        std::printf("%" PRIu64 " ok, %" PRIu64
                    " errors in %.2f s; raftd CPU %.2f s over %zu process(es); "
                    "generator CPU %.2f s (%.0f%% of the CPU used)\n",
                    ops, errs, secs, server_cpu, pids.size(), self_cpu, gen_share * 100);
        for (auto& [code, n] : d.errors())
            std::printf("  %s: %" PRIu64 "\n", code.c_str(), n);
    }
    return ops > 0 ? 0 : 1;
}
