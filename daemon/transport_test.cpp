// The peer transport on real loopback sockets: delivery in order, coalesced writes, refusal
// of another cluster and of an unexpected node id, the bounded send queue, and peer TLS
// (refusals of plaintext peers and of certificates naming another node, reloads).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "daemon/testing/pki.h"
#include "daemon/transport.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

std::string free_addr() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    ::close(fd);
    return "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
}

struct Node {
    TransportOptions opts;
    std::vector<raft::Message> got;
    std::unique_ptr<Transport> t;

    Node(ipc::uv::Loop& loop, raft::NodeId id, std::string cluster, uint64_t queue = 8u << 20,
         std::shared_ptr<TlsContext> tls = nullptr) {
        opts.self = id;
        opts.tls = std::move(tls);
        opts.cluster = std::move(cluster);
        opts.listen = opts.advertise = free_addr();
        opts.reconnect_min_ms = 10;
        opts.reconnect_max_ms = 50;
        opts.send_queue_bytes = queue;
        t = std::make_unique<Transport>(
            loop.get(), opts, [this](raft::Message&& m) { got.push_back(std::move(m)); }, [] {});
        REQUIRE(t->start());
    }
};

raft::Message append(raft::NodeId from, raft::NodeId to, raft::Index i, size_t bytes = 10) {
    raft::Message m;
    m.type = raft::MessageType::kAppend;
    m.from = from;
    m.to = to;
    m.term = 1;
    m.index = i - 1;
    m.log_term = 1;
    m.entries.push_back({i, 1, raft::EntryType::kData, raft::Payload(std::string(bytes, 'e'))});
    return m;
}

}  // namespace

TEST_CASE("messages arrive in order, many frames per write") {
    ipc::uv::Loop loop;
    {
        Node a(loop, 1, "c"), b(loop, 2, "c");
        a.t->set_peer(2, b.opts.advertise);
        for (raft::Index i = 1; i <= 200; ++i)
            a.t->send(append(1, 2, i));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return b.got.size() == 200; }));
        for (size_t i = 0; i < 200; ++i)
            CHECK(b.got[i].entries.at(0).index == i + 1);
        CHECK(a.t->stats().sent == 200);
        CHECK(a.t->stats().writes < 10);  // coalesced, not one write per message
        CHECK(a.t->connected_peers() == 1);
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("a peer of another cluster is refused and nothing reaches raft") {
    ipc::uv::Loop loop;
    {
        Node b(loop, 2, "ours"), stranger(loop, 1, "theirs");
        stranger.t->set_peer(2, b.opts.advertise);
        stranger.t->send(append(1, 2, 1));
        stranger.t->flush();
        REQUIRE(loop.run_until(
            [&] { return b.t->stats().refused >= 1 && stranger.t->stats().refused >= 1; }));
        CHECK(b.got.empty());
        CHECK(stranger.t->connected_peers() == 0);
        b.t->stop();
        stranger.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("a dialler expecting another node id at the address is refused") {
    ipc::uv::Loop loop;
    {
        Node b(loop, 2, "c"), a(loop, 1, "c");
        a.t->set_peer(7, b.opts.advertise);  // a thinks node 7 lives there
        raft::Message m = append(1, 7, 1);
        a.t->send(m);
        a.t->flush();
        REQUIRE(loop.run_until([&] { return b.t->stats().refused >= 1; }));
        CHECK(b.got.empty());
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("the send queue is bounded: excess messages are dropped, not buffered") {
    ipc::uv::Loop loop;
    {
        Node b(loop, 2, "c"), a(loop, 1, "c", 64 * 1024);
        a.t->set_peer(2, b.opts.advertise);
        // 100 messages of 4 KiB = 400 KiB against a 64 KiB queue, queued before any write.
        for (raft::Index i = 1; i <= 100; ++i)
            a.t->send(append(1, 2, i, 4096));
        CHECK(a.t->stats().dropped > 0);
        CHECK(a.t->stats().sent * 4096 <= 64 * 1024 + 4096);
        const uint64_t sent = a.t->stats().sent;
        a.t->flush();
        REQUIRE(loop.run_until([&] { return b.got.size() == sent; }));
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("messages to a node without an address are dropped") {
    ipc::uv::Loop loop;
    {
        Node a(loop, 1, "c");
        a.t->send(append(1, 9, 1));
        CHECK(a.t->stats().dropped == 1);
        a.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("handshakes carry incarnations: the owner may refuse one, and the dialler learns why") {
    ipc::uv::Loop loop;
    {
        Node b(loop, 2, "c"), a(loop, 1, "c");
        std::vector<PeerHello> hellos;
        b.t->set_hello_handler([&](const PeerHello& h) {
            hellos.push_back(h);
            if (h.bootstrapping) return HelloVerdict{false, "lost its data", 0x77};
            return HelloVerdict{};
        });
        std::vector<std::pair<raft::NodeId, PeerWelcome>> answers;
        a.t->set_welcome_handler([&](raft::NodeId id, const PeerWelcome& w) {
            answers.emplace_back(id, w);
            return HelloVerdict{};
        });
        a.t->set_incarnation(0xabc);
        a.t->set_bootstrapping(true);
        b.t->set_incarnation(0xdef);
        a.t->set_peer(2, b.opts.advertise);
        a.t->connect_all();  // no message needed to dial
        REQUIRE(loop.run_until([&] { return !answers.empty(); }));
        CHECK(hellos.at(0).incarnation == 0xabc);
        CHECK(hellos.at(0).bootstrapping);
        CHECK(answers[0].first == 2);
        CHECK_FALSE(answers[0].second.ok);
        CHECK(answers[0].second.known_incarnation == 0x77);
        CHECK(answers[0].second.incarnation == 0xdef);
        CHECK(a.t->connected_peers() == 0);
        // Bootstrapped (here: no longer claiming to): the next handshake is accepted.
        a.t->set_bootstrapping(false);
        REQUIRE(loop.run_until([&] { return a.t->connected_peers() == 1; }));
        CHECK_FALSE(hellos.back().bootstrapping);
        CHECK(answers.back().second.ok);
        const size_t before = hellos.size();
        // Turning bootstrapping off after a connection exists redials, so the peer sees a
        // handshake of a node with state.
        a.t->set_bootstrapping(true);
        a.t->set_bootstrapping(false);
        REQUIRE(
            loop.run_until([&] { return hellos.size() > before && a.t->connected_peers() == 1; }));
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("tls: messages arrive in order over mutual TLS, large ones too") {
    testing::Pki pki;
    ipc::uv::Loop loop;
    {
        Node a(loop, 1, "c", 64u << 20, pki.ctx(pki.files("node-1")));
        Node b(loop, 2, "c", 64u << 20, pki.ctx(pki.files("node-2")));
        a.t->set_peer(2, b.opts.advertise);
        for (raft::Index i = 1; i <= 200; ++i)
            a.t->send(append(1, 2, i, i % 50 == 0 ? (1u << 20) + i : 10));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return b.got.size() == 200; }));
        for (size_t i = 0; i < 200; ++i) {
            CHECK(b.got[i].entries.at(0).index == i + 1);
            CHECK(b.got[i].entries.at(0).data.size() ==
                  ((i + 1) % 50 == 0 ? (1u << 20) + i + 1 : 10));
        }
        CHECK(a.t->connected_peers() == 1);
        // New material for new connections; the link that is up stays up and carries on.
        testing::certs("node " + pki.dir + " c 1 30 renewed");
        a.t->set_tls(pki.ctx(pki.files("renewed")));
        a.t->send(append(1, 2, 201));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return b.got.size() == 201; }));
        CHECK(a.t->stats().refused == 0);
        CHECK(b.t->stats().refused == 0);
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("tls: node 2's valid certificate cannot speak for node 3") {
    testing::Pki pki;
    ipc::uv::Loop loop;
    {
        Node b(loop, 1, "c", 8u << 20, pki.ctx(pki.files("node-1")));
        Node impostor(loop, 3, "c", 8u << 20, pki.ctx(pki.files("node-2")));
        impostor.t->set_peer(1, b.opts.advertise);
        impostor.t->send(append(3, 1, 1));
        impostor.t->flush();
        REQUIRE(loop.run_until(
            [&] { return b.t->stats().refused >= 1 && impostor.t->stats().refused >= 1; }));
        CHECK(b.got.empty());
        CHECK(impostor.t->connected_peers() == 0);
        b.t->stop();
        impostor.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("tls: the dialler refuses an acceptor whose certificate names another node") {
    testing::Pki pki;
    ipc::uv::Loop loop;
    {
        // Node 2 listens with node 1's certificate; node 1 dials it expecting node 2.
        Node imposter(loop, 2, "c", 8u << 20, pki.ctx(pki.files("node-1")));
        Node a(loop, 1, "c", 8u << 20, pki.ctx(pki.files("node-1")));
        a.t->set_peer(2, imposter.opts.advertise);
        a.t->send(append(1, 2, 1));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return a.t->stats().refused >= 1; }));
        CHECK(imposter.got.empty());
        CHECK(a.t->connected_peers() == 0);
        a.t->stop();
        imposter.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("tls: plaintext and TLS nodes refuse each other and nothing reaches raft") {
    testing::Pki pki;
    ipc::uv::Loop loop;
    {
        Node secure(loop, 1, "c", 8u << 20, pki.ctx(pki.files("node-1")));
        Node plain(loop, 2, "c");
        plain.t->set_peer(1, secure.opts.advertise);
        secure.t->set_peer(2, plain.opts.advertise);
        for (raft::Index i = 1; i <= 3; ++i) {
            plain.t->send(append(2, 1, i));
            secure.t->send(append(1, 2, i));
        }
        plain.t->flush();
        secure.t->flush();
        // The TLS side refuses the plaintext hello; the plaintext side sees a ClientHello,
        // which is no frame.
        REQUIRE(loop.run_until(
            [&] { return secure.t->stats().refused >= 2 && plain.t->stats().bad_frames >= 2; }));
        CHECK(secure.got.empty());
        CHECK(plain.got.empty());
        CHECK(secure.t->connected_peers() == 0);
        CHECK(plain.t->connected_peers() == 0);
        secure.t->stop();
        plain.t->stop();
    }
    CHECK(loop.close());
}

TEST_CASE("a dialler may refuse an acceptor by its welcome: nothing is sent to it") {
    ipc::uv::Loop loop;
    {
        // b lost its data dir and waits to be added (join): its welcome says its store is
        // empty, and a, which knew it under another incarnation, must not feed or ask it.
        Node b(loop, 2, "c"), a(loop, 1, "c");
        b.t->set_incarnation(0xdef);
        b.t->set_bootstrapping(true);
        std::vector<PeerWelcome> answers;
        a.t->set_welcome_handler([&](raft::NodeId, const PeerWelcome& w) {
            answers.push_back(w);
            if (w.bootstrapping) return HelloVerdict{false, "knew node 2 with a log", 0};
            return HelloVerdict{};
        });
        a.t->set_peer(2, b.opts.advertise);
        a.t->send(append(1, 2, 1));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return answers.size() >= 2; }));  // refused, redialled
        CHECK(answers[0].ok);
        CHECK(answers[0].bootstrapping);
        CHECK(answers[0].incarnation == 0xdef);
        CHECK(a.t->connected_peers() == 0);
        CHECK(a.t->stats().refused >= 2);
        CHECK(b.got.empty());
        // Once b has state its welcome no longer says so, and the link comes up.
        b.t->set_bootstrapping(false);
        REQUIRE(loop.run_until([&] { return a.t->connected_peers() == 1; }));
        a.t->send(append(1, 2, 2));
        a.t->flush();
        REQUIRE(loop.run_until([&] { return !b.got.empty(); }));
        a.t->stop();
        b.t->stop();
    }
    CHECK(loop.close());
}
