// exactly_once_load: the load and the checker of the exactly-once end-to-end test
// (tests/integration/exactly_once_test.py; docs/protocol.md, "Exactly-once proposals").
//
//   exactly_once_load load OUT SOCKETS SESSIONS REQUESTS [--no-key]
//     SESSIONS threads, each one client session proposing REQUESTS unique payloads and
//     retrying each until it is answered (raftd::client::ExactlyOnce), while the test kills
//     and stops nodes. --no-key retries the same way without a session key (the naive retry
//     the feature exists to replace). Writes one line per request to OUT.
//   exactly_once_load snap before|after SOCKET
//     before: proposes keyed 64 KiB entries and uploads an application snapshot at the end;
//     after (the node restarted with its log compacted below the snapshot): retries of
//     those keys are answered with their first index, and the snapshot a subscriber gets
//     is exactly the application's bytes (the daemon's session section is not shown).
//   exactly_once_load check OUT SOCKET
//     Reads the whole commit stream from SOCKET and checks that no payload (and no key) was
//     applied twice, and that each answered request's index holds that request.
// Exit status 0 when everything held; the summary line says what was seen either way.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "raftd/client.h"

using namespace raftd::client;

namespace {

struct Record {
    std::string data;
    bool ok = false;
    uint64_t index = 0, term = 0, client = 0, seq = 0, attempts = 0;
    bool duplicate = false;
    std::string error;
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, sep))
        if (!part.empty()) out.push_back(part);
    return out;
}

// The naive retry: the same bytes again, without a key, after the same errors.
Record propose_without_key(std::vector<std::string>& sockets, size_t& at,
                           std::unique_ptr<Client>& conn, const std::string& data,
                           const Options& opts) {
    Record r;
    r.data = data;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
        if (!conn) {
            auto c = Client::connect(sockets[at], opts);
            if (c) conn = std::move(c.value());
        }
        if (conn) {
            ++r.attempts;
            auto p = conn->propose(data);
            if (p) {
                r.ok = true;
                r.index = p->index;
                r.term = p->term;
                return r;
            }
            r.error = p.error().to_string();
            if (!retryable_with_key(p.error().code)) return r;
            if (p.error().code == ErrorCode::kConnection ||
                p.error().code == ErrorCode::kShuttingDown || p.error().code == ErrorCode::kTimeout)
                conn.reset();
        }
        if (!conn) at = (at + 1) % sockets.size();
        if (std::chrono::steady_clock::now() > deadline) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

int load(const std::string& out_path, const std::string& socket_list, int sessions, int requests,
         bool keyed) {
    const std::vector<std::string> sockets = split(socket_list, ',');
    Options opts;
    opts.timeout_ms = 3000;  // a stopped node is left after this
    opts.name = "exactly-once-load";
    std::mutex mu;
    std::vector<Record> all;
    std::vector<std::thread> threads;
    for (int s = 0; s < sessions; s++) {
        threads.emplace_back([&, s] {
            // Each session starts on another node, so some go through followers.
            std::vector<std::string> mine;
            for (size_t i = 0; i < sockets.size(); i++)
                mine.push_back(sockets[(s + i) % sockets.size()]);
            ExactlyOnce eo(mine, opts);
            size_t at = 0;
            std::unique_ptr<Client> conn;
            std::vector<Record> got;
            for (int r = 1; r <= requests; r++) {
                const std::string data = "s" + std::to_string(s) + "-r" + std::to_string(r);
                Record rec;
                if (keyed) {
                    const SessionKey key = eo.next_key();
                    const uint64_t before = eo.attempts();
                    auto p = eo.propose(data, 60000);
                    rec.data = data;
                    rec.client = key.client;
                    rec.seq = key.seq;
                    rec.attempts = eo.attempts() - before;
                    if (p) {
                        rec.ok = true;
                        rec.index = p->index;
                        rec.term = p->term;
                        rec.duplicate = p->duplicate;
                    } else {
                        rec.error = p.error().to_string();
                    }
                } else {
                    rec = propose_without_key(mine, at, conn, data, opts);
                }
                got.push_back(std::move(rec));
            }
            std::lock_guard<std::mutex> g(mu);
            for (auto& rec : got)
                all.push_back(std::move(rec));
        });
    }
    for (auto& t : threads)
        t.join();
    std::ofstream out(out_path);
    size_t failed = 0, retried = 0, dups = 0;
    for (const Record& r : all) {
        out << r.data << ' ' << (r.ok ? "ok" : "fail") << ' ' << r.index << ' ' << r.term << ' '
            << r.client << ' ' << r.seq << ' ' << r.attempts << ' ' << r.duplicate << '\n';
        failed += !r.ok;
        retried += r.attempts > 1;
        dups += r.duplicate;
        if (!r.ok) std::fprintf(stderr, "%s: %s\n", r.data.c_str(), r.error.c_str());
    }
    std::printf("load: %zu requests, %zu failed, %zu retried, %zu answered as duplicates\n",
                all.size(), failed, retried, dups);
    return failed ? 1 : 0;
}

int check(const std::string& in_path, const std::string& socket) {
    std::vector<Record> recs;
    {
        std::ifstream in(in_path);
        std::string ok;
        Record r;
        while (in >> r.data >> ok >> r.index >> r.term >> r.client >> r.seq >> r.attempts >>
               r.duplicate) {
            r.ok = ok == "ok";
            recs.push_back(r);
        }
    }
    uint64_t upto = 0;
    for (const Record& r : recs)
        upto = std::max(upto, r.index);
    Options opts;
    opts.timeout_ms = 10000;
    auto c = Client::connect(socket, opts);
    if (!c) {
        std::fprintf(stderr, "check: %s\n", c.error().to_string().c_str());
        return 2;
    }
    auto st = (*c)->status();
    if (!st) {
        std::fprintf(stderr, "check: %s\n", st.error().to_string().c_str());
        return 2;
    }
    upto = std::max(upto, st->commit);
    std::map<uint64_t, Event> log;  // index -> data entry
    bool gap = false;
    uint64_t next = 1;
    auto sub = (*c)->subscribe(1, [&](const Event& e) {
        if (e.kind != Event::Kind::kEntry) {
            gap = true;  // a snapshot or the end: the test's cluster makes none
            return;
        }
        if (e.index != next) gap = true;
        next = e.index + 1;
        if (e.type == "data") log[e.index] = e;
    });
    if (!sub) {
        std::fprintf(stderr, "check: %s\n", sub.error().to_string().c_str());
        return 2;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (next <= upto && !gap && std::chrono::steady_clock::now() < deadline)
        if (!(*c)->poll(200)) break;
    if (gap || next <= upto) {
        std::fprintf(stderr, "check: the stream stopped at %llu of %llu\n",
                     static_cast<unsigned long long>(next), static_cast<unsigned long long>(upto));
        return 2;
    }
    std::map<std::string, std::vector<uint64_t>> by_data;
    std::map<std::pair<uint64_t, uint64_t>, std::vector<uint64_t>> by_key;
    for (const auto& [i, e] : log) {
        by_data[e.data].push_back(i);
        if (e.client) by_key[{e.client, e.seq}].push_back(i);
    }
    size_t applied_twice = 0, keys_twice = 0, wrong_index = 0, missing = 0, failed = 0;
    size_t retried = 0, dups = 0;
    for (const auto& [d, idx] : by_data)
        applied_twice += idx.size() - 1;
    for (const auto& [k, idx] : by_key)
        keys_twice += idx.size() - 1;
    for (const Record& r : recs) {
        retried += r.attempts > 1;
        dups += r.duplicate;
        if (!r.ok) {
            failed++;
            continue;
        }
        auto it = log.find(r.index);
        if (it == log.end() || it->second.data != r.data || it->second.term != r.term ||
            (r.client && (it->second.client != r.client || it->second.seq != r.seq))) {
            wrong_index++;
            if (wrong_index <= 5)
                std::fprintf(stderr, "check: %s answered at %llu, which holds %s\n", r.data.c_str(),
                             static_cast<unsigned long long>(r.index),
                             it == log.end() ? "no data entry" : it->second.data.c_str());
        }
        if (!by_data.count(r.data)) missing++;
    }
    std::printf(
        "check: %zu requests (%zu retried, %zu answered as duplicates, %zu failed); %zu data "
        "entries in the stream; applied twice: %zu payloads, %zu keys; answered with another "
        "index: %zu; missing: %zu\n",
        recs.size(), retried, dups, failed, log.size(), applied_twice, keys_twice, wrong_index,
        missing);
    return applied_twice || keys_twice || wrong_index || missing || failed ? 1 : 0;
}

constexpr uint64_t kSnapClient = 0x5eed;
constexpr int kSnapEntries = 60;
const std::string kAppSnapshot = "the application's snapshot bytes";

int snap(const std::string& phase, const std::string& socket) {
    Options opts;
    opts.timeout_ms = 20000;
    auto c = Client::connect(socket, opts);
    if (!c) {
        std::fprintf(stderr, "snap: %s\n", c.error().to_string().c_str());
        return 2;
    }
    Client& cl = **c;
    const std::string payload(64 << 10, 'p');
    std::vector<uint64_t> index(kSnapEntries + 1);
    int bad = 0;
    for (int s = 1; s <= kSnapEntries; s++) {
        auto p = cl.propose(payload, SessionKey{kSnapClient, uint64_t(s)});
        if (!p) {
            std::fprintf(stderr, "snap: seq %d: %s\n", s, p.error().to_string().c_str());
            return 1;
        }
        index[size_t(s)] = p->index;
        if (phase == "before" && p->duplicate) bad++;
        if (phase == "after" && !p->duplicate) {
            std::fprintf(stderr, "snap: seq %d appended again after the restart\n", s);
            bad++;
        }
    }
    if (phase == "before") {
        auto st = cl.status();
        if (!st) return 2;
        auto r = cl.snapshot(st->commit, kAppSnapshot);
        if (!r) {
            std::fprintf(stderr, "snap: upload: %s\n", r.error().to_string().c_str());
            return 1;
        }
        std::printf("snap: %d keyed entries through %llu, snapshot at %llu\n", kSnapEntries,
                    static_cast<unsigned long long>(index[kSnapEntries]),
                    static_cast<unsigned long long>(*r));
        return bad ? 1 : 0;
    }
    // after: the first key is answered from the table the snapshot's section restored (the
    // entries themselves were compacted away), and a subscriber sees the app's bytes only.
    auto st = cl.status();
    if (!st) return 2;
    if (st->first_index > index[1])
        std::printf("snap: log compacted: first index %llu\n",
                    static_cast<unsigned long long>(st->first_index));
    else {
        std::fprintf(stderr, "snap: the log was not compacted below the keyed entries\n");
        bad++;
    }
    std::string got;
    bool done = false;
    auto sub = cl.subscribe(1, [&](const Event& e) {
        if (e.kind == Event::Kind::kSnapshot) {
            got += e.data;
            done = done || e.done;
        }
    });
    if (!sub) return 2;
    for (int i = 0; i < 100 && !done; i++)
        if (!cl.poll(100)) break;
    if (got != kAppSnapshot) {
        std::fprintf(stderr, "snap: the subscriber's snapshot is %zu bytes, not the app's %zu\n",
                     got.size(), kAppSnapshot.size());
        bad++;
    }
    auto more = cl.propose("new", SessionKey{kSnapClient, kSnapEntries + 1});
    if (!more || more->duplicate) bad++;
    std::printf("snap: after the restart %d of %d retries answered with their first index\n",
                kSnapEntries - bad, kSnapEntries);
    return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string usage =
        "usage: exactly_once_load load OUT SOCKETS SESSIONS REQUESTS [--no-key]\n"
        "       exactly_once_load check OUT SOCKET\n";
    if (argc >= 6 && std::string(argv[1]) == "load")
        return load(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]),
                    !(argc >= 7 && std::string(argv[6]) == "--no-key"));
    if (argc == 4 && std::string(argv[1]) == "check") return check(argv[2], argv[3]);
    if (argc == 4 && std::string(argv[1]) == "snap") return snap(argv[2], argv[3]);
    std::fputs(usage.c_str(), stderr);
    return 2;
}
