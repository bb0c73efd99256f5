// The frame codec shared by the client server, the peer transport, the C++ client and
// raftbench (built with protocol.h's codec as libcodec.a, which links nothing of the server):
// a 4-byte big-endian length L, then L bytes holding exactly one msgpack value, which must
// be a map with string keys (docs/protocol.md, "Framing").
//
// Owns: FrameDecoder's input buffer (at most one frame plus one read's worth of bytes, so a
// peer that sends half a frame and stalls holds one frame's buffer, never more); OutBuffer's
// queued output. Decoded frames borrow the decoder's buffer: their str/bin values point into
// it, so a proposal's bytes are copied exactly once, from the socket buffer into its Payload.
// Never: allocate according to a length it has not checked against max_frame, or trust the
// msgpack bytes before validating them (sizes, nesting depth, value count, trailing bytes).
// No exception leaves this API.
//
// Thread rules: none shared; each decoder/buffer belongs to one connection on one thread.
#pragma once

#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::ipc {

constexpr size_t kFrameHeaderSize = 4;
constexpr uint32_t kDefaultMaxFrame = 16u << 20;

// What a frame's msgpack body may contain. The counts bound the decoder's memory: msgpack-c
// allocates per value (~24 bytes), so without max_values a 16 MiB frame of one-byte values
// could cost ~400 MiB.
struct FrameLimits {
    uint32_t max_frame = kDefaultMaxFrame;  // largest accepted L
    uint32_t max_depth = 16;                // nesting of arrays/maps; the top map is depth 1
    uint32_t max_values = 65536;            // every value, key and container counted once
};

// One decoded frame: the root map and the zone its values live in. str/bin values reference
// the buffer the frame was decoded from; see the owner's lifetime rule.
class Frame {
  public:
    Frame() = default;
    // The top-level value, always of type MAP with STR keys.
    const msgpack::object& root() const { return handle_.get(); }
    // The value under `key` (the first one when repeated), or nullptr.
    const msgpack::object* find(std::string_view key) const;
    // The msgpack bytes of the body (without the length prefix).
    std::string_view body() const { return body_; }

  private:
    friend Result<Frame> decode_frame_body(std::string_view body, const FrameLimits& limits);
    msgpack::object_handle handle_;
    std::string_view body_;
};

// The value under `key` of a msgpack map (the first when repeated), or nullptr.
const msgpack::object* map_find(const msgpack::object& map, std::string_view key);

// Checks that `body` is exactly one well-formed msgpack value within `limits`, and a map with
// string keys; then decodes it without copying str/bin bytes (they reference `body`, which
// must outlive the Frame). Errors are kInvalidArgument with a message for the BAD_FRAME reply.
Result<Frame> decode_frame_body(std::string_view body, const FrameLimits& limits = {});

// Incremental decoder for a byte stream delivered in arbitrary chunks.
//
// Two ways in: prepare()/commit() let libuv read straight into the decoder's buffer (the
// zero-copy path; a large frame's body is read into place); feed() copies a chunk in.
// Then call next() until it returns kNeedMore.
class FrameDecoder {
  public:
    enum class Kind {
        kNeedMore,  // no whole frame buffered yet
        kFrame,     // `frame` holds the next frame
        kBadFrame,  // the frame was consumed but is not a valid map; `error` says why
        kTooLarge,  // L is 0 or above max_frame; the stream cannot be resynchronised, so this
                    // is sticky: every later next() returns it again
    };
    struct Decoded {
        Kind kind = Kind::kNeedMore;
        Frame frame;
        std::string error;
    };

    explicit FrameDecoder(FrameLimits limits = {});
    FrameDecoder(const FrameDecoder&) = delete;
    FrameDecoder& operator=(const FrameDecoder&) = delete;

    // Writable space of at least one byte for the next read. Usually `suggested` bytes; when a
    // large frame's header is buffered, the space grows towards the frame's end so its body
    // lands in place. The span is valid until the next call on this decoder.
    std::pair<char*, size_t> prepare(size_t suggested = 64 * 1024);
    // Marks `n` bytes of the last prepare()'s span as filled (n <= its size).
    void commit(size_t n);
    // Appends a chunk (copying): for tests, fuzzers and non-libuv transports.
    void feed(std::string_view bytes);

    // The next frame. A returned Frame borrows the buffer: it is valid until the next call to
    // next(), prepare(), feed() or trim() on this decoder.
    Decoded next();

    // Frees the buffer when it holds no bytes, so idle connections cost nothing.
    void trim();
    // Bytes received but not yet returned as frames.
    size_t buffered() const { return end_ - begin_; }
    // Bytes currently allocated for input.
    size_t capacity() const { return cap_; }
    const FrameLimits& limits() const { return limits_; }

  private:
    void reserve_free(size_t want);

    FrameLimits limits_;
    std::unique_ptr<char[]> buf_;
    size_t cap_ = 0;
    size_t begin_ = 0;  // first unconsumed byte
    size_t end_ = 0;    // one past the last received byte
    bool broken_ = false;
    std::string broken_msg_;
};

// Output queued for one write: small pieces are copied into owned chunks, large payloads
// are referenced (shared, no copy) and gathered into one writev by the transport.
class OutBuffer {
  public:
    // Payloads at least this large are referenced instead of copied.
    static constexpr size_t kShareThreshold = 1024;

    // msgpack-c's stream interface: copies.
    void write(const char* p, size_t n);
    // Appends a payload's bytes, by reference when large.
    void append(const raft::Payload& p);

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    size_t frames() const { return frames_; }
    // The pieces in order, valid until the buffer is next modified.
    std::vector<std::string_view> pieces() const;
    // One contiguous copy (tests, simple blocking clients).
    std::string flatten() const;
    // Appends the bytes to `s` (a client keeping its own byte-string output queue).
    void append_to(std::string& s) const;
    void clear();

  private:
    friend class FrameWriter;
    struct Piece {
        std::string owned;
        raft::Payload shared;  // used when non-empty
    };
    std::vector<Piece> pieces_;
    size_t size_ = 0;
    size_t frames_ = 0;
};

// Appends one frame to an OutBuffer: construct, pack exactly one map with pk() (bin values
// through bin()), then finish(). Destroying an unfinished writer leaves a corrupt buffer, so
// finish() must always be called.
class FrameWriter {
  public:
    explicit FrameWriter(OutBuffer& out);
    FrameWriter(const FrameWriter&) = delete;
    FrameWriter& operator=(const FrameWriter&) = delete;

    msgpack::packer<OutBuffer>& pk() { return pk_; }
    // Packs a bin value whose bytes are shared when large.
    void bin(const raft::Payload& p);
    void bin(std::string_view bytes);
    void str(std::string_view s);
    // Writes the length prefix. Returns the frame's body length L.
    size_t finish();

  private:
    OutBuffer& out_;
    msgpack::packer<OutBuffer> pk_;
    size_t piece_;       // index of the piece holding the length prefix
    size_t offset_;      // its offset in that piece
    size_t start_size_;  // out_.size() right after the prefix
};

// Reads the big-endian length prefix of `p` (4 bytes).
uint32_t read_be32(const char* p);

}  // namespace raftd::ipc
