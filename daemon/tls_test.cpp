// TlsContext and TlsSession without sockets: two sessions pumped against each other, with
// certificates made by tools/peer-certs.sh in a scratch directory.
#include "daemon/tls.h"

#include <doctest/doctest.h>

#include <openssl/ssl.h>

#include <string>

#include "daemon/testing/pki.h"

namespace raftd::daemon {
namespace {

using testing::certs;
using testing::Pki;

// Moves ciphertext both ways until neither side has anything to say.
void pump(TlsSession& a, TlsSession& b) {
    for (int i = 0; i < 50; ++i) {
        std::string x = a.take_output(), y = b.take_output();
        if (x.empty() && y.empty()) return;
        b.feed(x);
        a.feed(y);
    }
    FAIL("the sessions kept talking");
}

std::string read_all(TlsSession& s) {
    std::string out;
    char buf[4096];
    while (size_t n = s.read(buf, sizeof buf))
        out.append(buf, n);
    return out;
}

}  // namespace

TEST_CASE("tls: mutual handshake, node names and data both ways") {
    Pki pki;
    TlsSession client(pki.ctx(pki.files("node-1")), TlsSession::Role::kClient);
    TlsSession server(pki.ctx(pki.files("node-2")), TlsSession::Role::kServer);
    client.start();
    pump(client, server);
    REQUIRE(client.open());
    REQUIRE(server.open());
    CHECK(client.peer_uris() == std::vector<std::string>{node_uri("c", 2)});
    CHECK(server.peer_uris() == std::vector<std::string>{node_uri("c", 1)});
    CHECK(server.peer_subject().find("node 1") != std::string::npos);

    client.write("hello");
    std::string big(3 << 20, 'x');  // many records
    for (size_t i = 0; i < big.size(); i += 4099)
        big[i] = static_cast<char>(i);
    client.write(big);
    server.feed(client.take_output());
    CHECK(read_all(server) == "hello" + big);
    server.write("back");
    client.feed(server.take_output());
    CHECK(read_all(client) == "back");
    // Bytes in pieces of one: records are reassembled.
    client.write("split");
    for (char ch : client.take_output())
        server.feed(std::string_view(&ch, 1));
    CHECK(read_all(server) == "split");
}

TEST_CASE("tls: refusals name the reason on the verifying side") {
    Pki pki;
    certs("ca " + pki.other);
    certs("node " + pki.other + " c 1");
    certs("node " + pki.dir + " c 1 1 expired", "-3d");
    certs("node " + pki.dir + " c 1 30 future", "+3d");
    certs("node " + pki.dir + " c 1 30 revoked");
    certs("revoke " + pki.dir + " revoked");
    const std::vector<std::pair<TlsFiles, std::string>> cases = {
        {pki.files("node-1", pki.other), "is not issued by peer_tls_ca"},
        {pki.files("expired"), "has expired (not after "},
        {pki.files("future"), "is not yet valid (not before "},
        {pki.files("revoked"), "is revoked (peer_tls_crl)"},
    };
    TlsFiles good = pki.files("node-2");
    good.crl = pki.dir + "/crl.pem";
    for (const auto& [bad, expect] : cases) {
        CAPTURE(expect);
        for (bool bad_is_client : {true, false}) {
            CAPTURE(bad_is_client);
            // load() refuses such a certificate for our own use; a node that did not check
            // is simulated by installing it over a good context.
            auto bad_ctx = pki.ctx(pki.files("node-2"));
            REQUIRE(SSL_CTX_use_certificate_file(bad_ctx->ctx(), bad.cert.c_str(),
                                                 SSL_FILETYPE_PEM) == 1);
            REQUIRE(SSL_CTX_use_PrivateKey_file(bad_ctx->ctx(), bad.key.c_str(),
                                                SSL_FILETYPE_PEM) == 1);
            auto good_ctx = pki.ctx(good);
            TlsSession c(bad_is_client ? bad_ctx : good_ctx, TlsSession::Role::kClient);
            TlsSession s(bad_is_client ? good_ctx : bad_ctx, TlsSession::Role::kServer);
            c.start();
            pump(c, s);
            // TLS 1.3: the client finishes before the server checks its certificate; the
            // server's alert then fails the client's first read.
            char buf[16];
            CHECK(c.read(buf, sizeof buf) == 0);
            TlsSession& verifier = bad_is_client ? s : c;
            TlsSession& refused = bad_is_client ? c : s;
            CHECK(verifier.state() == TlsSession::State::kFailed);
            CHECK_MESSAGE(verifier.error().find(expect) != std::string::npos, verifier.error());
            CHECK(refused.state() == TlsSession::State::kFailed);
            CHECK_MESSAGE(refused.error().find("the peer refused us") != std::string::npos,
                          refused.error());
            CHECK(s.read(buf, sizeof buf) == 0);
        }
    }
}

TEST_CASE("tls: a plaintext peer is refused before any byte is read") {
    Pki pki;
    TlsSession s(pki.ctx(pki.files("node-2")), TlsSession::Role::kServer);
    s.feed(std::string("\0\0\0\x20\x87", 5));
    CHECK(s.state() == TlsSession::State::kFailed);
    CHECK(s.error() == "not a TLS handshake (the peer runs without peer_tls_*?)");
    char buf[16];
    CHECK(s.read(buf, sizeof buf) == 0);
}

TEST_CASE("tls: load checks our own material") {
    Pki pki;
    CHECK(TlsContext::load(pki.files("node-1"), node_uri("c", 1)).is_ok());
    auto wrong = TlsContext::load(pki.files("node-1"), node_uri("c", 2));
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().message().find("does not name this node: it needs the SAN URI "
                                        "raftd://c/node/2") != std::string::npos);
    TlsFiles mixed = pki.files("node-1");
    mixed.key = pki.dir + "/node-2.key";
    auto m = TlsContext::load(mixed, "");
    REQUIRE_FALSE(m.is_ok());
    CHECK(m.status().message().find("peer_tls_key ") != std::string::npos);
    certs("node " + pki.dir + " c 1 1 expired", "-3d");
    auto e = TlsContext::load(pki.files("expired"), "");
    REQUIRE_FALSE(e.is_ok());
    CHECK(e.status().message().find("has expired") != std::string::npos);
    TlsFiles missing = pki.files("node-1");
    missing.ca = pki.dir + "/nope.pem";
    auto n = TlsContext::load(missing, "");
    REQUIRE_FALSE(n.is_ok());
    CHECK(n.status().message().find("peer_tls_ca ") == 0);
}

}  // namespace raftd::daemon
