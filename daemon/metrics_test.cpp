#include "daemon/metrics.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "daemon/http.h"
#include "daemon/testing/util.h"

using namespace raftd;
using namespace raftd::daemon;
using namespace std::chrono_literals;

namespace {

LoopSample healthy_sample() {
    LoopSample s;
    s.valid = true;
    s.at = std::chrono::steady_clock::now();
    s.node_id = 2;
    s.cluster = "c\"1";
    s.version = "0.1.0";
    s.role = "leader";
    s.term = 7;
    s.leader = 2;
    s.last_index = 100;
    PeerSample p;
    p.id = 3;
    p.connected = true;
    p.sent_messages = 5;
    p.has_match = true;
    p.match_index = 90;
    s.peers.push_back(p);
    return s;
}

// The value of the series `name{labels}` (or bare `name`) in an exposition.
std::string series(const std::string& body, const std::string& name_and_labels) {
    const std::string key = name_and_labels + " ";
    size_t at = body.find("\n" + key);
    if (at == std::string::npos) return "(absent)";
    at += 1 + key.size();
    return body.substr(at, body.find('\n', at) - at);
}

}  // namespace

TEST_CASE("histogram_counts_each_observation_in_the_first_bucket_not_below_it") {
    Histogram h;
    h.observe(100us);  // exactly the first bound: le="0.0001"
    h.observe(101us);  // le="0.00025"
    h.observe(3ms);    // le="0.005"
    h.observe(60s);    // beyond every bound: +Inf only
    const auto s = h.sample();
    CHECK(s.count == 4);
    CHECK(s.buckets[0] == 1);
    CHECK(s.buckets[1] == 1);
    CHECK(s.buckets[5] == 1);
    CHECK(s.buckets.back() == 1);
    CHECK(s.sum_seconds == doctest::Approx(60.003201));
}

TEST_CASE("prometheus_text_has_cumulative_buckets_escaped_labels_and_every_family") {
    Metrics m;
    m.proposals_ok.inc(3);
    m.proposals_failed[static_cast<size_t>(ipc::ErrorCode::kBusy)].inc();
    m.proposal_seconds.observe(2ms);
    m.proposal_seconds.observe(20ms);
    const std::string body = "\n" + render_prometheus(m, healthy_sample());
    CHECK(series(body, R"(raftd_info{node_id="2",cluster="c\"1",version="0.1.0"})") == "1");
    CHECK(series(body, "raftd_is_leader") == "1");
    CHECK(series(body, R"(raftd_role{role="leader"})") == "1");
    CHECK(series(body, R"(raftd_role{role="follower"})") == "0");
    CHECK(series(body, R"(raftd_proposals_total{result="ok"})") == "3");
    CHECK(series(body, R"(raftd_proposals_total{result="BUSY"})") == "1");
    CHECK(series(body, R"(raftd_proposal_duration_seconds_bucket{le="0.001"})") == "0");
    CHECK(series(body, R"(raftd_proposal_duration_seconds_bucket{le="0.0025"})") == "1");
    CHECK(series(body, R"(raftd_proposal_duration_seconds_bucket{le="0.025"})") == "2");
    CHECK(series(body, R"(raftd_proposal_duration_seconds_bucket{le="+Inf"})") == "2");
    CHECK(series(body, "raftd_proposal_duration_seconds_count") == "2");
    CHECK(series(body, R"(raftd_peer_connected{peer="3"})") == "1");
    CHECK(series(body, R"(raftd_peer_sent_messages_total{peer="3"})") == "5");
    CHECK(series(body, R"(raftd_peer_behind_entries{peer="3"})") == "10");
    // Every family is announced once, with HELP before TYPE, even without series.
    LoopSample bare = healthy_sample();
    bare.peers.clear();
    const std::string empty = render_prometheus(m, bare);
    CHECK(empty.find("# TYPE raftd_peer_connected gauge\n") != std::string::npos);
    CHECK(empty.find("raftd_peer_connected{") == std::string::npos);
    // std::regex is avoided: g++ 12 warns inside it under the sanitizers (-Werror).
    size_t families = 0;
    const std::string tag = "# TYPE ";
    for (size_t at = empty.find(tag); at != std::string::npos; at = empty.find(tag, at + 1)) {
        const size_t name_end = empty.find(' ', at + tag.size());
        REQUIRE(name_end != std::string::npos);
        const std::string name = empty.substr(at + tag.size(), name_end - at - tag.size());
        ++families;
        CHECK(empty.find("# HELP " + name + " ") < at);
    }
    CHECK(families >= 30);
}

TEST_CASE("health_says_why_a_node_is_not_healthy") {
    const auto now = std::chrono::steady_clock::now();
    LoopSample s = healthy_sample();
    s.at = now;
    HealthVerdict v = health(s, now, 0ns);
    CHECK(v.ok);
    CHECK(v.reason == "ok: leader, leader 2, term 7");

    CHECK(health(LoopSample{}, now, 0ns).reason == "starting");
    LoopSample no_leader = s;
    no_leader.role = "pre_candidate";
    no_leader.leader = 0;
    v = health(no_leader, now, 0ns);
    CHECK_FALSE(v.ok);
    CHECK(v.reason == "no leader known (pre_candidate, term 7)");
    // The loop stopped publishing (stuck): judged from the HTTP thread's clock.
    v = health(s, now + 6s, 0ns);
    CHECK_FALSE(v.ok);
    CHECK(v.reason == "the event loop has not run for 6 s");
    // A durable write that does not return wins over everything the loop says.
    v = health(s, now, 12s);
    CHECK_FALSE(v.ok);
    CHECK(v.reason == "storage: a durable write has been running for 12 s");
    LoopSample stopping = s;
    stopping.stopping = true;
    CHECK(health(stopping, now, 0ns).reason == "stopping");
}

TEST_CASE("storage_write_age_is_zero_between_writes") {
    Metrics m;
    CHECK(m.storage_write_age() == 0ns);
    m.storage_write_began();
    CHECK(m.storage_write_age() >= 0ns);
    m.storage_write_ended();
    CHECK(m.storage_write_age() == 0ns);
}

TEST_CASE("status_json_is_the_status_reply_without_its_envelope") {
    ipc::StatusReply r;
    r.node_id = 4;
    r.cluster = "prod\"a";
    r.role = "follower";
    r.term = 9;
    r.leader = 1;
    r.commit = 50;
    r.membership.members.push_back({1, "10.0.0.1:7000", true, false, std::nullopt});
    r.version = "0.1.0";
    const std::string js = status_json(r);
    CHECK(js.rfind(R"({"node_id":4,"cluster":"prod\"a","role":"follower","term":9,"leader":1,)",
                   0) == 0);
    CHECK(js.find(R"("members":[{"node":1,"addr":"10.0.0.1:7000","voter":true}])") !=
          std::string::npos);
    CHECK(js.find("\"id\"") == std::string::npos);
    CHECK(js.find("\"ok\"") == std::string::npos);
}

TEST_CASE("http_server_answers_on_its_own_thread_and_names_a_taken_address") {
    Metrics m;
    m.publish(healthy_sample());
    // A free port (metrics_listen refuses port 0, as every address option does).
    const std::string addr = testing::free_loopback_addr();
    const uint16_t port = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
    auto srv = HttpServer::start(addr, m);
    REQUIRE(srv);
    CHECK(srv.value()->port() == port);

    // A raw request over TCP: the answer comes from MHD's thread while this one waits.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req = "GET /health HTTP/1.0\r\n\r\n";
    REQUIRE(::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    CHECK(resp.rfind("HTTP/1.", 0) == 0);
    CHECK(resp.find(" 200 OK\r\n") != std::string::npos);
    CHECK(resp.find("\r\n\r\nok: leader, leader 2, term 7\n") != std::string::npos);

    CHECK(srv.value()->handle("/metrics").content_type ==
          "text/plain; version=0.0.4; charset=utf-8");
    CHECK(srv.value()->handle("/status").status == 200);
    CHECK(srv.value()->handle("/nope").status == 404);

    auto taken = HttpServer::start("127.0.0.1:" + std::to_string(port), m);
    REQUIRE_FALSE(taken);
    CHECK(taken.status().message() ==
          "metrics_listen 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}
