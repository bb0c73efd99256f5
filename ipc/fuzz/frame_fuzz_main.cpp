// libFuzzer target for the bytes a client can send: the incremental frame decoder (input
// split into chunks at fuzzer-chosen points) and the request parser on every frame it
// yields. Whatever parses must re-encode to a request that parses back to the same op.
// Built with clang (-fsanitize=fuzzer,address,undefined) by the Makefile's fuzz block; run
// briefly by tests/scripts/fuzz_frame.sh and for minutes by `make soak-fuzz`.
//
// Named *main.cpp so the module library never includes it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "ipc/frame.h"
#include "ipc/protocol.h"

using namespace raftd::ipc;

namespace {

void check(bool cond) {
    if (!cond) std::abort();  // a finding: libFuzzer saves the input
}

void roundtrip(const Request& req, uint64_t id) {
    OutBuffer out;
    encode_request(out, id, req);
    std::string bytes = out.flatten();
    FrameDecoder d;
    d.feed(bytes);
    FrameDecoder::Decoded got = d.next();
    check(got.kind == FrameDecoder::Kind::kFrame);
    Parsed again = parse_request(got.frame);
    check(again.ok());
    check(again.id && *again.id == id);
    check(op_name(*again.request) == op_name(req));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // First byte: chunk size for feeding (1..256), so frame boundaries fall anywhere.
    const size_t chunk = static_cast<size_t>(data[0]) + 1;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    FrameLimits lim;
    lim.max_frame = 1 << 20;  // keep allocations small; the logic is the same
    FrameDecoder dec(lim);
    size_t pos = 0;
    bool broken = false;
    while (pos < in.size() && !broken) {
        size_t n = std::min(chunk, in.size() - pos);
        if (pos % 2 == 0) {
            dec.feed(in.substr(pos, n));
        } else {
            auto [p, cap] = dec.prepare(n);
            size_t k = std::min(n, cap);
            std::memcpy(p, in.data() + pos, k);
            dec.commit(k);
            n = k;
        }
        pos += n;
        for (;;) {
            FrameDecoder::Decoded d = dec.next();
            if (d.kind == FrameDecoder::Kind::kNeedMore) break;
            if (d.kind == FrameDecoder::Kind::kTooLarge) {
                broken = true;
                break;
            }
            if (d.kind == FrameDecoder::Kind::kBadFrame) {
                check(!d.error.empty());
                continue;
            }
            check(d.frame.root().type == msgpack::type::MAP);
            Parsed p = parse_request(d.frame);
            if (p.ok()) {
                roundtrip(*p.request, *p.id);
            } else {
                check(!p.error.message.empty());
                OutBuffer out;
                encode_error(out, p.id, p.error);  // the server's reply must encode
                check(out.frames() == 1);
            }
        }
        dec.trim();
    }
    // The whole input as one body, too.
    auto body = decode_frame_body(in, lim);
    if (body) (void)parse_request(*body);
    return 0;
}
