// raftd-counter: a replicated counter in C++ on raftd::client::ApplyLoop, the C++ twin of
// clients/examples/kv. README.md beside this file explains it.
//
// The state is what every replica computes from the commit stream: the sum of "add N"
// entries, the number of data entries, and a hash chained over every entry (index, type,
// CRC-32 of the data) it applied, so that two replicas (or a replica and the log) can be compared:
// equal hashes mean the same entries were applied once each, in the same order. The snapshot is
// that state as one text line.
//
// Owns: the counter state and the command line / REPL. Never: anything of the protocol;
// the apply loop and the client do that.
#include <poll.h>
#include <raftd/apply_loop.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace rc = raftd::client;

namespace {

// CRC-32 (IEEE), so the hash chain costs a few bytes per entry to recompute elsewhere
// (Python's zlib.crc32 gives the same values).
uint32_t crc32(std::string_view bytes) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : bytes)
        c = table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

struct Counter {
    uint64_t applied = 0;
    int64_t total = 0;
    uint64_t count = 0;                     // data entries
    uint64_t hash = 14695981039346656037u;  // FNV-1a 64 offset basis

    void mix(std::string_view bytes) {
        for (unsigned char c : bytes) {
            hash ^= c;
            hash *= 1099511628211u;
        }
    }
    void apply(const rc::Entry& e) {
        // "INDEX TYPE CRC32-OF-DATA " per entry, chained.
        char crc[16];
        std::snprintf(crc, sizeof crc, "%08x", crc32(e.data));
        mix(std::to_string(e.index) + " " + e.type + " " + crc + " ");
        applied = e.index;
        if (e.type != "data") return;
        ++count;
        // "add N" optionally followed by a space and padding; anything else only counts.
        std::string_view d = e.data;
        if (d.substr(0, 4) == "add ") {
            int64_t n = 0;
            d.remove_prefix(4);
            auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), n);
            if (ec == std::errc()) total += n;
        }
    }
    std::string encode() const {
        char b[128];
        std::snprintf(b, sizeof b, "%" PRIu64 " %" PRId64 " %" PRIu64 " %016" PRIx64, applied,
                      total, count, hash);
        return b;
    }
    rc::Result<rc::Unit> decode(std::string_view s, uint64_t index) {
        Counter c;
        std::string str(s);
        if (std::sscanf(str.c_str(), "%" SCNu64 " %" SCNd64 " %" SCNu64 " %" SCNx64, &c.applied,
                        &c.total, &c.count, &c.hash) != 4 ||
            c.applied != index) {
            rc::Error e;
            e.code = rc::ErrorCode::kInternal;
            e.message = "not a counter snapshot through " + std::to_string(index) + ": " + str;
            return e;
        }
        *this = c;
        return rc::Unit{};
    }
};

void usage() {
    std::fprintf(stderr,
                 "usage: raftd-counter [--socket PATH] [--snapshot-every N] COMMAND\n"
                 "  add N      propose \"add N\", print INDEX TOTAL once applied here\n"
                 "  get        linearizable read: print TOTAL\n"
                 "  repl       commands from stdin, one per line: add N | get | wait INDEX |\n"
                 "             state | quit; the state keeps being applied in between\n");
}

const auto kDeadline = std::chrono::seconds(60);

std::string state_line(const Counter& c, const rc::ApplyLoop& l) {
    const rc::ApplyStats& s = l.stats();
    char h[24];
    std::snprintf(h, sizeof h, "%016" PRIx64, c.hash);
    return "applied=" + std::to_string(c.applied) + " total=" + std::to_string(c.total) +
           " count=" + std::to_string(c.count) + " hash=" + h +
           " restores=" + std::to_string(s.restores) + " snapshots=" + std::to_string(s.snapshots) +
           " snapshot_failures=" + std::to_string(s.snapshot_failures) +
           " reconnects=" + std::to_string(s.reconnects) +
           " connected=" + (l.connected() ? "1" : "0") +
           " snapshot_error=" + (s.last_snapshot_error ? s.last_snapshot_error->code_name : "-");
}

// One command; false on a failure worth exiting for (printed as "error CODE: MESSAGE").
bool run(const std::string& line, Counter& c, rc::ApplyLoop& l) {
    auto dl = rc::ApplyLoop::Clock::now() + kDeadline;
    auto fail = [](const rc::Error& e) {
        std::printf("error %s\n", e.to_string().c_str());
        return false;
    };
    if (line.rfind("add ", 0) == 0) {
        auto p = l.propose(line, dl);
        if (!p) return fail(p.error());
        if (auto w = l.wait_applied(p->index, dl); !w) return fail(w.error());
        std::printf("%" PRIu64 " %" PRId64 "\n", p->index, c.total);
    } else if (line == "get") {
        if (auto r = l.read_barrier(dl); !r) return fail(r.error());
        std::printf("%" PRId64 "\n", c.total);
    } else if (line.rfind("wait ", 0) == 0) {
        if (auto w = l.wait_applied(std::strtoull(line.c_str() + 5, nullptr, 10), dl); !w)
            return fail(w.error());
        std::printf("%s\n", state_line(c, l).c_str());
    } else if (line == "state") {
        std::printf("%s\n", state_line(c, l).c_str());
    } else {
        std::printf("error BAD_REQUEST: unknown command: %s\n", line.c_str());
    }
    std::fflush(stdout);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket;
    rc::ApplyOptions opts;
    opts.name = "raftd-counter";
    opts.snapshot.every_entries = 1000;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; ++i) {
        std::string a = argv[i];
        if (a == "--socket" && i + 1 < argc) {
            socket = argv[++i];
        } else if (a == "--snapshot-every" && i + 1 < argc) {
            opts.snapshot.every_entries = std::strtoull(argv[++i], nullptr, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (i >= argc) {
        usage();
        return 2;
    }
    std::string cmd = argv[i];

    Counter counter;
    rc::ApplyCallbacks cb;
    cb.apply = [&](const rc::Entry& e) { counter.apply(e); };
    cb.snapshot = [&] { return counter.encode(); };
    cb.restore = [&](std::string_view b, uint64_t idx) { return counter.decode(b, idx); };
    auto loop = rc::ApplyLoop::open(rc::default_socket(socket), cb, opts);
    if (!loop) {
        std::fprintf(stderr, "raftd-counter: %s\n", loop.error().to_string().c_str());
        return 3;
    }
    rc::ApplyLoop& l = **loop;

    if (cmd == "add" && i + 1 < argc)
        return run("add " + std::string(argv[i + 1]), counter, l) ? 0 : 1;
    if (cmd == "get") return run("get", counter, l) ? 0 : 1;
    if (cmd != "repl") {
        usage();
        return 2;
    }
    // The REPL keeps applying while it waits for input, as a long-running replica does. A
    // lost daemon is not fatal: the loop keeps reconnecting; anything else is.
    std::string buf;
    for (;;) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) {
            char chunk[4096];
            ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
            if (n <= 0) return 0;
            buf.append(chunk, static_cast<size_t>(n));
            size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                if (line == "quit") return 0;
                if (!line.empty()) run(line, counter, l);
            }
            continue;
        }
        if (auto r = l.poll(20); !r) {
            std::fprintf(stderr, "raftd-counter: %s\n", r.error().to_string().c_str());
            if (r.error().code != rc::ErrorCode::kConnection) return 1;
        }
    }
}
