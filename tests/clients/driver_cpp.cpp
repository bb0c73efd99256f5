// The C++ client's driver of the conformance scenarios (tests/clients/scenarios.txt), built
// as build/release/tests/client_driver_cpp; see conformance.py for the harness protocol.
//
//   client_driver_cpp --scenario NAME --nodes 1=SOCK,... --leader ID --spare ID
//   client_driver_cpp --bench SOCK [--seconds S]
//
// raftd::client::Client is used by one thread at a time: concurrent workers each get their
// own connection and pipeline on it with propose_async.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "raftd/client.h"

namespace {

using namespace raftd::client;
using Clock = std::chrono::steady_clock;

std::map<uint64_t, std::string> g_nodes;
uint64_t g_leader = 0, g_spare = 0;

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(bool cond, const std::string& what) {
    if (!cond) throw Failure(what);
}

template <typename T>
T must(Result<T> r, const std::string& what) {
    if (!r) throw Failure(what + ": " + r.error().to_string());
    return std::move(r.value());
}

std::unique_ptr<Client> client(uint64_t id, int timeout_ms = 30000) {
    Options o;
    o.timeout_ms = timeout_ms;
    o.name = "conformance-cpp";
    return must(Client::connect(g_nodes.at(id), o), "connect to node " + std::to_string(id));
}

std::vector<uint64_t> followers() {
    std::vector<uint64_t> out;
    for (auto& [id, _] : g_nodes)
        if (id != g_leader) out.push_back(id);
    return out;
}

std::string ask(const std::string& req) {
    std::cout << req << std::endl;
    std::string line;
    check(static_cast<bool>(std::getline(std::cin, line)) && line.rfind("ok", 0) == 0,
          "harness refused " + req + ": " + line);
    return line.size() > 3 ? line.substr(3) : "";
}

struct Entry {
    uint64_t index;
    std::string type, data;
};

// Node's stream from `from` through `upto`, contiguous; a leading snapshot is one Entry of
// type "snapshot" holding the reassembled bytes.
std::vector<Entry> stream(uint64_t id, uint64_t from, uint64_t upto) {
    auto c = client(id);
    std::vector<Entry> out;
    std::string snap;
    uint64_t last = from - 1;
    std::string err;
    must(c->subscribe(from,
                      [&](const Event& ev) {
                          if (!err.empty()) return;
                          if (ev.kind == Event::Kind::kEnd) {
                              err = "stream ended: " + ev.error->to_string();
                          } else if (ev.kind == Event::Kind::kSnapshot) {
                              if (ev.offset == 0) snap.clear();
                              snap += ev.data;
                              if (ev.done) {
                                  out.push_back({ev.index, "snapshot", snap});
                                  last = ev.index;
                              }
                          } else if (ev.index != last + 1) {
                              err = "stream gap " + std::to_string(last) + " -> " +
                                    std::to_string(ev.index);
                          } else {
                              last = ev.index;
                              out.push_back({ev.index, ev.type, ev.data});
                          }
                      }),
         "subscribe");
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (last < upto && err.empty()) {
        check(Clock::now() < deadline, "stream stopped at " + std::to_string(last));
        must(c->poll(100), "poll");
    }
    check(err.empty(), "node " + std::to_string(id) + ": " + err);
    return out;
}

std::map<std::string, std::vector<uint64_t>> payloads(const std::vector<Entry>& s) {
    std::map<std::string, std::vector<uint64_t>> m;
    for (auto& e : s)
        if (e.type == "data") m[e.data].push_back(e.index);
    return m;
}

uint64_t read_index(uint64_t id) {
    return must(client(id)->read_index(), "read_index");
}

// Pipelines `datas` on c; returns each one's index (throws on any error).
std::vector<uint64_t> propose_all(Client& c, const std::vector<std::string>& datas) {
    std::vector<uint64_t> res(datas.size());
    std::string err;
    for (size_t i = 0; i < datas.size(); i++)
        c.propose_async(datas[i], [&, i](Result<Proposed> r) {
            if (r)
                res[i] = r->index;
            else if (err.empty())
                err = r.error().to_string();
        });
    must(c.wait_all(60000), "wait_all");
    check(err.empty(), "propose: " + err);
    return res;
}

// ---- scenarios --------------------------------------------------------------------------

void ping() {
    auto id = followers()[0];
    auto c = client(id);
    check(c->server().node_id == id && !c->server().cluster.empty() && c->server().version == 1,
          "hello");
    must(c->ping(), "ping");
}

void propose_concurrent() {
    auto id = followers()[0];
    std::vector<std::vector<uint64_t>> acked(8);
    std::vector<std::string> errors(8);
    std::vector<std::thread> ts;
    for (int w = 0; w < 8; w++)
        ts.emplace_back([&, w] {
            try {
                auto c = client(id);
                std::vector<std::string> d;
                for (int i = 0; i < 50; i++)
                    d.push_back("cpp-w" + std::to_string(w) + "-" + std::to_string(i));
                acked[w] = propose_all(*c, d);
            } catch (const std::exception& e) {
                errors[w] = e.what();
            }
        });
    for (auto& t : ts)
        t.join();
    uint64_t top = 0;
    std::map<uint64_t, int> seen;
    for (int w = 0; w < 8; w++) {
        check(errors[w].empty(), errors[w]);
        for (auto ix : acked[w]) {
            check(++seen[ix] == 1, "index acknowledged twice");
            top = std::max(top, ix);
        }
    }
    auto got = payloads(stream(id, 1, top));
    for (int w = 0; w < 8; w++)
        for (int i = 0; i < 50; i++) {
            auto p = "cpp-w" + std::to_string(w) + "-" + std::to_string(i);
            check(got[p] == std::vector<uint64_t>{acked[w][i]}, p + " not once at its index");
        }
}

void per_connection_order() {
    auto c = client(g_leader);
    std::vector<std::string> d;
    for (int i = 0; i < 200; i++)
        d.push_back("cpp-order-" + std::to_string(i));
    auto res = propose_all(*c, d);
    for (size_t i = 1; i < res.size(); i++)
        check(res[i] > res[i - 1], "acknowledged " + std::to_string(i) + " out of order");
    auto got = payloads(stream(g_leader, res.front(), res.back()));
    for (size_t i = 0; i < res.size(); i++)
        check(got[d[i]] == std::vector<uint64_t>{res[i]}, d[i] + " not at its index");
}

void subscribe_from_1() {
    auto id = followers()[1];
    auto s = stream(id, 1, read_index(id));
    check(!s.empty(), "empty stream");
    if (s[0].type == "snapshot")
        check(s.size() == 1 || s[1].index == s[0].index + 1, "entries continue after the snapshot");
    else
        check(s[0].index == 1, "starts at " + std::to_string(s[0].index));
}

void subscribe_from_middle() {
    auto c = client(g_leader);
    std::vector<uint64_t> idx;
    for (int i = 0; i < 20; i++)
        idx.push_back(must(c->propose("cpp-mid-" + std::to_string(i)), "propose").index);
    auto s = stream(followers()[0], idx[9], idx[19]);
    check(s[0].index == idx[9] && s[0].data == "cpp-mid-9", "first event");
    auto got = payloads(s);
    for (int i = 9; i < 20; i++)
        check(got["cpp-mid-" + std::to_string(i)] == std::vector<uint64_t>{idx[i]}, "entry order");
}

void subscribe_after_compaction() {
    auto c = client(g_leader);
    std::vector<std::string> d;
    for (int i = 0; i < 40; i++)
        d.push_back("cpp-big-" + std::to_string(i) + std::string(65536, 'x'));
    propose_all(*c, d);
    auto ix = must(c->read_index(), "read_index");
    stream(g_leader, ix, ix);
    auto state = "cpp-state-through-" + std::to_string(ix);
    check(must(c->snapshot(ix, state, 7), "snapshot") == ix, "snapshot index");
    auto st = must(c->status(), "status");
    check(st.first_index > 1 && st.snapshot_index == ix, "log compacted");
    uint64_t last = 0;
    for (int i = 0; i < 3; i++)
        last = must(c->propose("cpp-after-" + std::to_string(i)), "propose").index;
    auto s = stream(g_leader, 1, last);
    check(s[0].type == "snapshot" && s[0].index == ix && s[0].data == state,
          "stream starts with the snapshot");
    for (size_t k = 1; k < s.size(); k++)
        check(s[k].index == ix + k, "entries after the snapshot");
}

void read_index_follower() {
    auto ix = must(client(g_leader)->propose("cpp-ri"), "propose").index;
    auto f = followers()[0];
    auto ri = read_index(f);
    check(ri >= ix, "read_index below the committed index");
    check(payloads(stream(f, ix, ri))["cpp-ri"] == std::vector<uint64_t>{ix}, "follower stream");
}

void membership() {
    auto c = client(followers()[0], 60000);
    auto voter = [](const Members& m) -> int {  // -1: not a member
        for (auto& x : m.members)
            if (x.node == g_spare) return x.voter ? 1 : 0;
        return -1;
    };
    check(voter(must(c->add_member(g_spare, "127.0.0.1:1", true), "add_member")) == 0, "learner");
    check(voter(must(c->promote(g_spare), "promote")) == 1, "promoted");
    check(voter(must(c->demote(g_spare), "demote")) == 0, "demoted");
    check(voter(must(c->remove_member(g_spare), "remove_member")) == -1, "removed");
    auto m = must(c->change_members({{g_spare, "127.0.0.1:1", true}}, {}), "change_members add");
    check(voter(m) == 0 && !m.joint, "change_members added");
    check(voter(must(c->change_members({}, {g_spare}), "change_members remove")) == -1,
          "change_members removed");
    check(must(c->members(), "members").members.size() == 3, "three members again");
    auto r = c->remove_member(99);
    check(
        !r && (r.error().code == ErrorCode::kBadRequest || r.error().code == ErrorCode::kNotFound),
        "removing an unknown node");
}

void transfer() {
    auto f = followers()[0];
    auto c = client(f);
    check(must(c->transfer_leader(f), "transfer_leader") == f, "transfer answered the target");
    check(must(c->status(), "status").role == "leader", "it leads");
}

void campaign() {
    auto c = client(followers()[0]);
    auto term = must(c->status(), "status").term;
    check(must(c->campaign(), "campaign") >= term, "campaign term");
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (must(c->status(), "status").leader == 0) {
        check(Clock::now() < deadline, "no leader after the campaign");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void bad_input() {
    auto c = client(g_leader);
    auto r = c->propose(std::string(c->server().max_entry + 1, 'x'));
    check(!r && r.error().code == ErrorCode::kTooLarge, "oversized proposal");
    must(c->ping(), "ping after TOO_LARGE");
    auto u = c->unsubscribe(987654);
    check(!u && u.error().code == ErrorCode::kNotFound, "unsubscribe unknown");
    auto commit = must(c->status(), "status").commit;
    auto s = c->snapshot(commit + 1000, "s");
    check(!s && s.error().code == ErrorCode::kBadRequest, "snapshot above the commit index");
    must(c->ping(), "ping at the end");
}

void deadline() {
    auto fs = followers();
    auto c = client(g_leader, 100);  // every synchronous call: a 100 ms deadline
    ask("@pause " + std::to_string(fs[0]) + "," + std::to_string(fs[1]));
    auto t0 = Clock::now();
    auto r = c->propose("cpp-deadline");
    auto took = Clock::now() - t0;
    ask("@resume");
    check(!r, "the proposal committed with both followers paused");
    check(took < std::chrono::seconds(2), "answered too late");
    check(r.error().code == ErrorCode::kIndeterminate || r.error().code == ErrorCode::kTimeout,
          "error claims more than it knows: " + r.error().to_string());
    std::optional<Result<Proposed>> after;
    c->propose_async("cpp-after-deadline", [&](Result<Proposed> p) { after.emplace(p); });
    must(c->wait_all(20000), "wait for the proposal after resume");
    check(after && after->ok(), "propose after resume");
}

void kill_leader() {
    auto id = followers()[0];
    std::mutex mu;
    std::map<std::string, uint64_t> acked;
    std::atomic<bool> stop{false};
    std::atomic<int> unknown{0};
    std::string error;
    std::thread t([&] {
        try {
            auto c = client(id, 15000);
            for (int i = 0; !stop; i += 20) {
                bool unavailable = false;
                for (int j = 0; j < 20; j++) {
                    auto d = "cpp-k-" + std::to_string(i + j);
                    c->propose_async(d, [&, d](Result<Proposed> r) {
                        if (r) {
                            std::lock_guard<std::mutex> g(mu);
                            acked[d] = r->index;
                        } else if (r.error().code == ErrorCode::kUnavailable) {
                            unavailable = true;
                        } else {
                            unknown++;
                        }
                    });
                }
                must(c->wait_all(30000), "wait_all");
                if (unavailable) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> g(mu);
            error = e.what();
        }
    });
    auto count = [&] {
        std::lock_guard<std::mutex> g(mu);
        check(error.empty(), error);
        return acked.size();
    };
    auto wait_for = [&](size_t n, const std::string& what) {
        auto deadline = Clock::now() + std::chrono::seconds(30);
        while (count() < n) {
            check(Clock::now() < deadline, "timed out waiting for " + what);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    };
    try {
        wait_for(100, "100 acknowledged");
        auto nl = std::stoull(ask("@kill-leader"));
        g_nodes.erase(g_leader);
        g_leader = nl;
        wait_for(count() + 100, "100 more after the kill");
    } catch (...) {
        stop = true;
        t.join();
        throw;
    }
    stop = true;
    t.join();
    check(error.empty(), error);
    auto top = read_index(g_leader);
    for (auto& [n, _] : g_nodes) {
        auto got = payloads(stream(n, 1, top));
        for (auto& [d, ix] : acked)
            check(got[d].size() == 1, "node " + std::to_string(n) + ": " + d + " acked at " +
                                          std::to_string(ix) + " seen " +
                                          std::to_string(got[d].size()) + " times");
        for (auto& [d, at] : got)
            check(at.size() == 1, "node " + std::to_string(n) + ": " + d + " twice");
    }
    std::cerr << "acknowledged " << acked.size() << ", indeterminate " << unknown << "\n";
}

// 64 proposals of 256 B in flight on one connection, each completion sending the next.
int bench(const std::string& sock, double seconds) {
    Options o;
    o.name = "bench-cpp";
    auto c = must(Client::connect(sock, o), "connect");
    std::string data(256, 'b');
    long n = 0, failed = 0;
    bool measuring = false, stopping = false;
    std::function<void(Result<Proposed>)> done = [&](Result<Proposed> r) {
        if (measuring) (r ? n : failed)++;
        if (!stopping) c->propose_async(data, done);
    };
    for (int i = 0; i < 64; i++)
        c->propose_async(data, done);
    auto start = Clock::now();
    auto until = start + std::chrono::seconds(1);
    while (Clock::now() < until)
        must(c->poll(10), "poll");
    measuring = true;
    start = Clock::now();
    until = start + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    while (Clock::now() < until)
        must(c->poll(10), "poll");
    measuring = false;
    double el = std::chrono::duration<double>(Clock::now() - start).count();
    stopping = true;
    c->wait_all(30000);
    std::printf("{\"client\": \"cpp\", \"proposals_per_s\": %.0f, \"failed\": %ld}\n", n / el,
                failed);
    return 0;
}

const std::map<std::string, std::function<void()>> kScenarios = {
    {"ping", ping},
    {"propose_concurrent", propose_concurrent},
    {"per_connection_order", per_connection_order},
    {"subscribe_from_1", subscribe_from_1},
    {"subscribe_from_middle", subscribe_from_middle},
    {"subscribe_after_compaction", subscribe_after_compaction},
    {"read_index_follower", read_index_follower},
    {"membership", membership},
    {"transfer", transfer},
    {"campaign", campaign},
    {"bad_input", bad_input},
    {"deadline", deadline},
    {"kill_leader", kill_leader},
};

}  // namespace

int main(int argc, char** argv) {
    std::string scenario, nodes, bench_sock;
    double seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--scenario")
            scenario = v;
        else if (k == "--nodes")
            nodes = v;
        else if (k == "--leader")
            g_leader = std::stoull(v);
        else if (k == "--spare")
            g_spare = std::stoull(v);
        else if (k == "--bench")
            bench_sock = v;
        else if (k == "--seconds")
            seconds = std::stod(v);
    }
    try {
        if (!bench_sock.empty()) return bench(bench_sock, seconds);
        size_t pos = 0;
        while (pos < nodes.size()) {
            auto end = nodes.find(',', pos);
            if (end == std::string::npos) end = nodes.size();
            auto kv = nodes.substr(pos, end - pos);
            auto eq = kv.find('=');
            if (eq != std::string::npos) g_nodes[std::stoull(kv.substr(0, eq))] = kv.substr(eq + 1);
            pos = end + 1;
        }
        auto it = kScenarios.find(scenario);
        if (it == kScenarios.end()) {
            std::cout << "result: fail: the C++ driver has no scenario '" << scenario << "'"
                      << std::endl;
            return 1;
        }
        it->second();
    } catch (const std::exception& e) {
        std::cout << "result: fail: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "result: pass" << std::endl;
    return 0;
}
