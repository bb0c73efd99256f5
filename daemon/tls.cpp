// Peer TLS over memory BIOs: see tls.h.
#include "daemon/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

namespace raftd::daemon {

namespace {

// The oldest queued OpenSSL error, as text; clears the queue so the next call starts clean.
std::string openssl_error() {
    unsigned long e = ERR_get_error();
    std::string out;
    if (e != 0) {
        const char* r = ERR_reason_error_string(e);
        out = r ? r : "error " + std::to_string(e);
    }
    ERR_clear_error();
    return out.empty() ? "unknown OpenSSL error" : out;
}

std::string name_of(const X509_NAME* n) {
    if (!n) return "?";
    char buf[256];
    X509_NAME_oneline(n, buf, sizeof buf);
    return buf;
}

std::string time_of(const ASN1_TIME* t) {
    if (!t) return "?";
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
    ASN1_TIME_print(b.get(), t);
    char* p = nullptr;
    long n = BIO_get_mem_data(b.get(), &p);
    return std::string(p, static_cast<size_t>(n));
}

std::vector<std::string> uris_of(X509* cert) {
    std::vector<std::string> out;
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (!names) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI) continue;
        const ASN1_IA5STRING* s = g->d.uniformResourceIdentifier;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
    return out;
}

// One line for a verification failure: `leaf` is the peer's own certificate, `bad` the one
// OpenSSL found at fault (the leaf, or a CA of its chain).
std::string describe_verify_error(int err, X509* bad, X509* leaf) {
    if (!leaf) leaf = bad;
    const std::string who =
        leaf ? "certificate " + name_of(X509_get_subject_name(leaf)) : std::string("certificate");
    const std::string via = bad && bad != leaf && X509_cmp(bad, leaf) != 0
                                ? " (its CA " + name_of(X509_get_subject_name(bad)) + ")"
                                : "";
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return who + via + " has expired (not after " + time_of(X509_get0_notAfter(bad)) + ")";
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return who + via + " is not yet valid (not before " +
                   time_of(X509_get0_notBefore(bad)) + ")";
        case X509_V_ERR_CERT_REVOKED:
            return who + " is revoked (peer_tls_crl)";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
            return who + " is not issued by peer_tls_ca (its issuer is " +
                   name_of(leaf ? X509_get_issuer_name(leaf) : nullptr) + ")";
        default:
            return who + via + ": " + X509_verify_cert_error_string(err);
    }
}

// The first verification failure of a handshake, kept by the verify callback.
struct VerifyFailure {
    int err = X509_V_OK;
    std::string line;
};
int verify_failure_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

int verify_cb(int ok, X509_STORE_CTX* x) {
    if (ok) return ok;
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* f =
        ssl ? static_cast<VerifyFailure*>(SSL_get_ex_data(ssl, verify_failure_index())) : nullptr;
    if (f && f->err == X509_V_OK) {
        f->err = X509_STORE_CTX_get_error(x);
        f->line = describe_verify_error(f->err, X509_STORE_CTX_get_current_cert(x),
                                        X509_STORE_CTX_get0_cert(x));
    }
    return 0;
}

}  // namespace

std::string node_uri(std::string_view cluster, uint64_t id) {
    return "raftd://" + std::string(cluster) + "/node/" + std::to_string(id);
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

Result<std::shared_ptr<TlsContext>> TlsContext::load(const TlsFiles& files,
                                                     const std::string& self_uri) {
    ERR_clear_error();
    std::shared_ptr<TlsContext> c(new TlsContext());
    c->ctx_ = SSL_CTX_new(TLS_method());
    if (!c->ctx_) return Status::internal("SSL_CTX_new: " + openssl_error());
    SSL_CTX* ctx = c->ctx_;
    // Only TLS 1.3: no renegotiation, no RSA key exchange, the certificate is encrypted.
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    // No resumption: every connection verifies a certificate against the current CA and CRL.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    // Records are pulled from the input BIO in as few reads as possible.
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1)
        return Status::invalid_argument("peer_tls_cert " + files.cert + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1)
        return Status::invalid_argument("peer_tls_key " + files.key + ": " + openssl_error());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return Status::invalid_argument("peer_tls_key " + files.key +
                                        " does not match peer_tls_cert " + files.cert);
    if (SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) != 1)
        return Status::invalid_argument("peer_tls_ca " + files.ca + ": " + openssl_error());
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    if (!files.crl.empty()) {
        X509_LOOKUP* lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lu || X509_load_crl_file(lu, files.crl.c_str(), X509_FILETYPE_PEM) <= 0)
            return Status::invalid_argument("peer_tls_crl " + files.crl + ": " + openssl_error());
        // The leaf's issuer must have a CRL in the file; intermediate CAs are not checked.
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);

    // Our own certificate, checked as a peer will check it, so that a mistake shows at start
    // (or at SIGHUP) rather than as refusals on every other node.
    X509* own = SSL_CTX_get0_certificate(ctx);
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> vs(X509_STORE_CTX_new(),
                                                                       X509_STORE_CTX_free);
    if (!vs || X509_STORE_CTX_init(vs.get(), store, own, chain) != 1)
        return Status::internal("X509_STORE_CTX_init: " + openssl_error());
    if (X509_verify_cert(vs.get()) != 1) {
        int err = X509_STORE_CTX_get_error(vs.get());
        X509* bad = X509_STORE_CTX_get_current_cert(vs.get());
        return Status::invalid_argument("peer_tls_cert " + files.cert + ": " +
                                        describe_verify_error(err, bad ? bad : own, own));
    }
    if (!self_uri.empty()) {
        auto uris = uris_of(own);
        if (std::find(uris.begin(), uris.end(), self_uri) == uris.end())
            return Status::invalid_argument("peer_tls_cert " + files.cert +
                                            " does not name this node: it needs the SAN URI " +
                                            self_uri);
    }
    c->summary_ =
        name_of(X509_get_subject_name(own)) + ", valid until " + time_of(X509_get0_notAfter(own));
    ERR_clear_error();
    return c;
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, Role role)
    : ctx_(std::move(ctx)), role_(role) {
    ERR_clear_error();  // read() and write() rely on an empty error queue (see there)
    ssl_ = SSL_new(ctx_->ctx());
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    if (!ssl_ || !in_ || !out_) {
        BIO_free(in_);
        BIO_free(out_);
        in_ = out_ = nullptr;
        fail("out of memory");
        return;
    }
    // An empty input BIO means "wait for more", not end of stream.
    BIO_set_mem_eof_return(in_, -1);
    BIO_set_mem_eof_return(out_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_ex_data(ssl_, verify_failure_index(), new VerifyFailure());
    if (role == Role::kClient)
        SSL_set_connect_state(ssl_);
    else
        SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() {
    if (ssl_) {
        delete static_cast<VerifyFailure*>(SSL_get_ex_data(ssl_, verify_failure_index()));
        SSL_free(ssl_);  // frees both BIOs
    }
}

void TlsSession::start() {
    if (role_ == Role::kClient && state_ == State::kHandshake) step_handshake();
}

void TlsSession::fail(const std::string& why) {
    if (state_ == State::kFailed) return;
    state_ = State::kFailed;
    error_ = why;
}

void TlsSession::ssl_failed(int ret, const char* what) {
    int e = SSL_get_error(ssl_, ret);
    if (e == SSL_ERROR_ZERO_RETURN) {
        state_ = State::kClosed;
        return;
    }
    auto* vf = static_cast<VerifyFailure*>(SSL_get_ex_data(ssl_, verify_failure_index()));
    if (vf && vf->err != X509_V_OK) {
        ERR_clear_error();
        fail(vf->line);
        return;
    }
    unsigned long code = ERR_peek_error();
    std::string reason = openssl_error();
    // An alert from the peer: it refused us (our certificate, usually).
    if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) >= SSL_AD_REASON_OFFSET) {
        refused_by_peer_ = true;
        fail(std::string(what) + ": the peer refused us: " + reason);
    } else {
        fail(std::string(what) + ": " + reason);
    }
}

void TlsSession::step_handshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        X509* peer = SSL_get0_peer_certificate(ssl_);
        if (!peer ||
            SSL_get_verify_result(ssl_) != X509_V_OK) {  // cannot happen with our verify mode
            fail("the peer presented no verified certificate");
            return;
        }
        peer_uris_ = uris_of(peer);
        peer_subject_ = name_of(X509_get_subject_name(peer));
        state_ = State::kOpen;
        return;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    ssl_failed(r, "TLS handshake");
}

void TlsSession::feed(std::string_view ciphertext) {
    if (state_ != State::kHandshake && state_ != State::kOpen) return;
    if (ciphertext.empty()) return;
    if (!first_byte_seen_) {
        first_byte_seen_ = true;
        // 22 is a TLS handshake record, 21 an alert. A raftd without TLS starts with a frame
        // length (0) or closes; anything else is not a peer of a TLS cluster.
        const auto b = static_cast<unsigned char>(ciphertext[0]);
        if (b != 22 && !(role_ == Role::kClient && b == 21)) {
            fail("not a TLS handshake (the peer runs without peer_tls_*?)");
            return;
        }
    }
    if (BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size())) !=
        static_cast<int>(ciphertext.size())) {
        fail("out of memory");
        return;
    }
    if (state_ == State::kHandshake) step_handshake();
}

size_t TlsSession::read(char* buf, size_t n) {
    if (state_ != State::kOpen || n == 0) return 0;
    // Nothing buffered: skip the call that would only say "want read" (it is not free).
    if (!SSL_has_pending(ssl_) && BIO_ctrl_pending(in_) == 0) return 0;
    // No ERR_clear_error() here or in write(): it costs more than decrypting a small record,
    // and the queue is already empty (every failure path empties it; "want read" adds
    // nothing), which is what SSL_get_error() needs.
    int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1u << 30)));
    if (r > 0) return static_cast<size_t>(r);
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    ssl_failed(r, "TLS");
    return 0;
}

void TlsSession::write(std::string_view plain) {
    if (state_ != State::kOpen) return;
    while (!plain.empty()) {
        const int n = static_cast<int>(std::min<size_t>(plain.size(), 1u << 30));
        int r = SSL_write(ssl_, plain.data(), n);
        if (r <= 0) {
            ssl_failed(r, "TLS write");
            return;
        }
        plain.remove_prefix(static_cast<size_t>(r));
    }
}

bool TlsSession::has_output() const {
    return out_ && BIO_ctrl_pending(out_) > 0;
}

std::string TlsSession::take_output() {
    if (!out_) return {};
    // BIO_read consumes in place; BIO_reset would clear the BIO's whole capacity each time.
    const size_t n = BIO_ctrl_pending(out_);
    if (n == 0) return {};
    std::string s(n, '\0');
    const int r = BIO_read(out_, s.data(), static_cast<int>(n));
    s.resize(r > 0 ? static_cast<size_t>(r) : 0);
    return s;
}

}  // namespace raftd::daemon
