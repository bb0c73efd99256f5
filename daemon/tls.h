// Peer TLS: mutual TLS 1.3 over memory BIOs, for the peer transport (docs/peer-protocol.md,
// "TLS"; docs/operations.md, section 11).
//
// Owns: the certificate material (TlsContext: cert, key, CA, optional CRL loaded into one
// SSL_CTX, reloadable by building a new one) and one connection's TLS state machine
// (TlsSession: an SSL with a memory BIO each way). Ciphertext goes in with feed() and comes
// out with take_output(); plaintext comes out with read() and goes in with write().
// Never: touch a socket or block (the caller moves the ciphertext), hand out plaintext
// before the handshake finished and the peer's certificate verified against the CA (chain,
// validity, CRL), or decide what a node id means: it reports the certificate's node names
// (node_uri()) and the transport compares them with the handshake.
//
// Thread rules: a TlsContext is immutable once loaded and may be shared by sessions (OpenSSL
// counts references to the SSL_CTX); a TlsSession belongs to one thread.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"

namespace raftd::daemon {

struct TlsFiles {
    std::string cert, key, ca, crl;  // PEM paths; crl may be empty
    bool enabled() const { return !cert.empty(); }
};

// The SAN URI naming node `id` of `cluster`: raftd://CLUSTER/node/ID.
std::string node_uri(std::string_view cluster, uint64_t id);

class TlsContext {
  public:
    // Loads and checks the files: the key matches the certificate, the certificate is
    // signed by the CA, names `self_uri` (when not empty) and is valid now. Errors name the
    // file and the reason.
    static Result<std::shared_ptr<TlsContext>> load(const TlsFiles& files,
                                                    const std::string& self_uri);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    SSL_CTX* ctx() const { return ctx_; }
    // "subject CN, valid until DATE": for the log line of a (re)load.
    const std::string& summary() const { return summary_; }

  private:
    TlsContext() = default;
    SSL_CTX* ctx_ = nullptr;
    std::string summary_;
};

class TlsSession {
  public:
    enum class Role { kClient, kServer };
    enum class State {
        kHandshake,  // feed ciphertext and send take_output() until it changes
        kOpen,       // handshake done, peer certificate verified: read() and write()
        kFailed,     // error() says why; send take_output() (an alert) and close
        kClosed,     // the peer closed the TLS stream cleanly
    };

    TlsSession(std::shared_ptr<TlsContext> ctx, Role role);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Starts the handshake (the client's first flight); a no-op for a server.
    void start();
    // Ciphertext received from the peer. Drives the handshake; after it, the plaintext is
    // buffered for read().
    void feed(std::string_view ciphertext);
    // Decrypted bytes into [buf, buf+n): how many (0: none buffered now). Only when open.
    size_t read(char* buf, size_t n);
    // Encrypts `plain` (only when open); the records wait in take_output(). Small pieces
    // should be gathered by the caller: every call makes at least one record.
    void write(std::string_view plain);
    // Ciphertext to send to the peer, moved out (empty when none).
    std::string take_output();
    bool has_output() const;

    State state() const { return state_; }
    bool open() const { return state_ == State::kOpen; }
    // Why the handshake or the stream failed, worded for a log line ("certificate has
    // expired", "not a TLS handshake (the peer runs without peer_tls_*?)", ...).
    const std::string& error() const { return error_; }
    // The failure was the peer's alert: it refused us (our certificate, usually).
    bool refused_by_peer() const { return refused_by_peer_; }
    // The verified peer certificate's SAN URIs (empty before kOpen).
    const std::vector<std::string>& peer_uris() const { return peer_uris_; }
    // Its subject, for log lines.
    const std::string& peer_subject() const { return peer_subject_; }

  private:
    void step_handshake();
    void fail(const std::string& why);
    void ssl_failed(int ret, const char* what);

    std::shared_ptr<TlsContext> ctx_;
    SSL* ssl_ = nullptr;
    BIO* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
    BIO* out_ = nullptr;  // ciphertext to the peer (owned by ssl_)
    Role role_;
    State state_ = State::kHandshake;
    bool first_byte_seen_ = false;
    bool refused_by_peer_ = false;
    std::string error_;
    std::vector<std::string> peer_uris_;
    std::string peer_subject_;
};

}  // namespace raftd::daemon
