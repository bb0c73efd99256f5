// libFuzzer target for the bytes a peer can send, before and after TLS:
//  - before: the input goes, in fuzzer-chosen chunks, into an accepting TlsSession with the
//    certificates named by RAFTD_FUZZ_PKI (tests/scripts/fuzz_peer.sh makes them). Nobody
//    without a CA-signed key can complete that handshake, so the session must never open
//    nor yield a plaintext byte;
//  - after (and without TLS): the same bytes as the plaintext stream of a peer connection,
//    decoded as daemon/transport.cpp does: the first frame under the 4 KiB handshake limit
//    as a hello (and, from the dialler's side, as a welcome), the rest as raft messages and
//    forwarded requests. Whatever decodes must re-encode to something that decodes equal.
// Built with clang (-fsanitize=fuzzer,address,undefined) by the Makefile's fuzz block.
//
// Named *main.cpp so the module library never includes it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>

#include "daemon/peer_codec.h"
#include "daemon/tls.h"
#include "ipc/frame.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

void check(bool cond) {
    if (!cond) std::abort();  // a finding: libFuzzer saves the input
}

std::shared_ptr<TlsContext> g_tls;

ipc::Frame reframe(ipc::FrameDecoder& d, const ipc::OutBuffer& out) {
    d.feed(out.flatten());
    auto got = d.next();
    check(got.kind == ipc::FrameDecoder::Kind::kFrame);
    return std::move(got.frame);
}

void plaintext(std::string_view in, size_t chunk) {
    ipc::FrameDecoder dec(ipc::FrameLimits{4096});
    size_t pos = 0;
    bool handshake = true;
    while (pos < in.size()) {
        const size_t n = std::min(chunk, in.size() - pos);
        dec.feed(in.substr(pos, n));
        pos += n;
        for (;;) {
            auto d = dec.next();
            if (d.kind == ipc::FrameDecoder::Kind::kNeedMore) break;
            if (d.kind != ipc::FrameDecoder::Kind::kFrame) return;  // the connection closes
            ipc::FrameDecoder again(ipc::FrameLimits{1u << 20});
            if (handshake) {
                handshake = false;
                if (auto h = decode_hello(d.frame)) {
                    ipc::OutBuffer out;
                    encode_hello(out, *h);
                    auto h2 = decode_hello(reframe(again, out));
                    check(h2.is_ok() && h2->cluster == h->cluster && h2->from == h->from &&
                          h2->to == h->to && h2->addr == h->addr &&
                          h2->incarnation == h->incarnation &&
                          h2->bootstrapping == h->bootstrapping);
                }
                if (auto w = decode_welcome(d.frame)) {
                    ipc::OutBuffer out;
                    encode_welcome(out, *w);
                    ipc::FrameDecoder again2(ipc::FrameLimits{1u << 20});
                    auto w2 = decode_welcome(reframe(again2, out));
                    check(w2.is_ok() && w2->ok == w->ok && w2->node == w->node &&
                          w2->cluster == w->cluster);
                }
                continue;
            }
            if (is_forward(d.frame)) {
                if (auto f = decode_forward(d.frame)) {
                    ipc::OutBuffer out;
                    encode_forward(out, *f);
                    auto f2 = decode_forward(reframe(again, out));
                    // A refusal's canonical form carries no data: only its code and message.
                    const bool refusal = f->kind == Forward::Kind::kResult && !f->ok;
                    const bool keyed = f->kind != Forward::Kind::kResult && f->client != 0;
                    check(f2.is_ok() && f2->seq == f->seq &&
                          (refusal || f2->data.size() == f->data.size()) &&
                          (!keyed || (f2->client == f->client && f2->client_seq == f->client_seq)));
                }
                continue;
            }
            if (auto m = decode_message(d.frame)) {
                ipc::OutBuffer out;
                encode_message(out, *m);
                auto m2 = decode_message(reframe(again, out));
                check(m2.is_ok() && m2->type == m->type && m2->from == m->from && m2->to == m->to &&
                      m2->term == m->term && m2->entries.size() == m->entries.size());
            }
        }
    }
}

void before_tls(std::string_view in, size_t chunk) {
    if (!g_tls) return;
    TlsSession s(g_tls, TlsSession::Role::kServer);
    char buf[4096];
    for (size_t pos = 0; pos < in.size(); pos += chunk) {
        s.feed(in.substr(pos, std::min(chunk, in.size() - pos)));
        (void)s.take_output();
        check(!s.open());
        check(s.read(buf, sizeof buf) == 0);
        if (s.state() == TlsSession::State::kFailed) check(!s.error().empty());
        if (s.state() != TlsSession::State::kHandshake) break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (const char* dir = std::getenv("RAFTD_FUZZ_PKI")) {
        const std::string d = dir;
        auto c = TlsContext::load(TlsFiles{d + "/node-1.pem", d + "/node-1.key", d + "/ca.pem", ""},
                                  node_uri("fuzz", 1));
        if (!c) std::abort();  // the script's certificates must load
        g_tls = std::move(c).value();
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // First byte: chunk size for feeding (1..256), so boundaries fall anywhere.
    const size_t chunk = static_cast<size_t>(data[0]) + 1;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    before_tls(in, chunk);
    plaintext(in, chunk);
    return 0;
}
