#include "ipc/frame.h"

#include <cstring>
#include <exception>

namespace raftd::ipc {

uint32_t read_be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

namespace {

uint64_t read_be(const unsigned char* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
        v = (v << 8) | p[i];
    return v;
}

// Walks the msgpack bytes once, without allocating, before msgpack-c sees them: msgpack-c
// trusts declared container sizes when it allocates, so a 5-byte "array of 4 billion" must
// be refused here. Also enforces "a map with string keys at the top" and "nothing after".
Status scan(std::string_view body, const FrameLimits& lim) {
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    const size_t n = body.size();
    size_t pos = 0;
    uint64_t values = 0;
    // remaining[d] = values still expected in the container open at depth d (1-based).
    constexpr uint32_t kStack = 64;
    uint64_t remaining[kStack + 1];
    uint32_t depth = 0;
    const uint32_t max_depth = lim.max_depth < kStack ? lim.max_depth : kStack;
    // Index of the next value within the top-level map (even = key), to check key types.
    uint64_t top_pos = 0;

    auto need = [&](uint64_t k) { return k <= n - pos; };
    do {
        if (pos >= n) return Status::invalid_argument("truncated msgpack value");
        if (++values > lim.max_values)
            return Status::invalid_argument("more than " + std::to_string(lim.max_values) +
                                            " msgpack values");
        const unsigned char b = p[pos++];
        if (depth == 0 && (b & 0xf0) != 0x80 && b != 0xde && b != 0xdf)
            return Status::invalid_argument("frame is not a map");
        if (depth == 1 && top_pos % 2 == 0 && (b & 0xe0) != 0xa0 && b != 0xd9 && b != 0xda &&
            b != 0xdb)
            return Status::invalid_argument("map key is not a string");
        if (depth == 1) ++top_pos;

        uint64_t skip = 0;      // bytes of payload to skip
        uint64_t children = 0;  // values contained (2 per map entry)
        bool container = false;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        } else if (b <= 0x8f) {
            container = true, children = 2ull * (b & 0x0f);
        } else if (b <= 0x9f) {
            container = true, children = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else if (b == 0xc1) {
            return Status::invalid_argument("invalid msgpack byte 0xc1");
        } else {
            // Fixed-size prefixes: length bytes to read, then what the length means.
            size_t len_bytes = 0;
            uint64_t extra = 0;  // ext type byte
            enum { kSkip, kArray, kMap } what = kSkip;
            switch (b) {
                case 0xc4:
                    len_bytes = 1;
                    break;
                case 0xc5:
                    len_bytes = 2;
                    break;
                case 0xc6:
                    len_bytes = 4;
                    break;
                case 0xc7:
                    len_bytes = 1, extra = 1;
                    break;
                case 0xc8:
                    len_bytes = 2, extra = 1;
                    break;
                case 0xc9:
                    len_bytes = 4, extra = 1;
                    break;
                case 0xca:
                    skip = 4;
                    break;
                case 0xcb:
                    skip = 8;
                    break;
                case 0xcc:
                case 0xd0:
                    skip = 1;
                    break;
                case 0xcd:
                case 0xd1:
                    skip = 2;
                    break;
                case 0xce:
                case 0xd2:
                    skip = 4;
                    break;
                case 0xcf:
                case 0xd3:
                    skip = 8;
                    break;
                case 0xd4:
                    skip = 2;
                    break;
                case 0xd5:
                    skip = 3;
                    break;
                case 0xd6:
                    skip = 5;
                    break;
                case 0xd7:
                    skip = 9;
                    break;
                case 0xd8:
                    skip = 17;
                    break;
                case 0xd9:
                    len_bytes = 1;
                    break;
                case 0xda:
                    len_bytes = 2;
                    break;
                case 0xdb:
                    len_bytes = 4;
                    break;
                case 0xdc:
                    len_bytes = 2, what = kArray;
                    break;
                case 0xdd:
                    len_bytes = 4, what = kArray;
                    break;
                case 0xde:
                    len_bytes = 2, what = kMap;
                    break;
                case 0xdf:
                    len_bytes = 4, what = kMap;
                    break;
                default:
                    return Status::internal("unreachable msgpack byte");
            }
            if (len_bytes) {
                if (!need(len_bytes)) return Status::invalid_argument("truncated msgpack value");
                const uint64_t len = read_be(p + pos, len_bytes);
                pos += len_bytes;
                if (what == kArray) {
                    container = true, children = len;
                } else if (what == kMap) {
                    container = true, children = 2 * len;
                } else {
                    skip = len + extra;
                }
            }
        }
        if (skip) {
            if (!need(skip)) return Status::invalid_argument("truncated msgpack value");
            pos += skip;
        }
        if (container && children > 0) {
            // Every child takes at least one byte: a larger count is a lie, refuse it now.
            if (children > n - pos) return Status::invalid_argument("truncated msgpack value");
            if (children > lim.max_values)
                return Status::invalid_argument("more than " + std::to_string(lim.max_values) +
                                                " msgpack values");
            if (depth + 1 > max_depth)
                return Status::invalid_argument("msgpack nesting deeper than " +
                                                std::to_string(max_depth));
            remaining[++depth] = children;
            continue;
        }
        // A scalar or empty container completes one value in each finished enclosing level.
        while (depth > 0 && --remaining[depth] == 0)
            --depth;
    } while (depth > 0);
    if (pos != n) return Status::invalid_argument("trailing bytes after the msgpack value");
    return Status::ok();
}

// Reference str/bin/ext bytes in place instead of copying them into the zone.
bool reference_all(msgpack::type::object_type, std::size_t, void*) {
    return true;
}

}  // namespace

const msgpack::object* map_find(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        const msgpack::object_kv& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR &&
            std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key)
            return &kv.val;
    }
    return nullptr;
}

const msgpack::object* Frame::find(std::string_view key) const {
    return map_find(root(), key);
}

Result<Frame> decode_frame_body(std::string_view body, const FrameLimits& limits) {
    if (body.empty()) return Status::invalid_argument("empty frame");
    if (Status st = scan(body, limits); !st) return st;
    Frame f;
    try {
        std::size_t off = 0;
        f.handle_ =
            msgpack::unpack(body.data(), body.size(), off, &reference_all, nullptr,
                            msgpack::unpack_limit(limits.max_values, limits.max_values, body.size(),
                                                  body.size(), body.size(), limits.max_depth));
        if (off != body.size())
            return Status::invalid_argument("trailing bytes after the msgpack value");
    } catch (const std::exception& e) {
        // The scan accepted it, so this is msgpack-c disagreeing or memory exhaustion.
        return Status::invalid_argument(std::string("msgpack: ") + e.what());
    }
    f.body_ = body;
    return f;
}

FrameDecoder::FrameDecoder(FrameLimits limits) : limits_(limits) {}

void FrameDecoder::reserve_free(size_t want) {
    if (cap_ - end_ >= want) return;
    const size_t live = end_ - begin_;
    if (buf_ && cap_ - live >= want && live <= cap_ / 2) {
        // Room at the front: slide the partial frame down (it is at most one frame).
        std::memmove(buf_.get(), buf_.get() + begin_, live);
    } else {
        size_t cap = cap_ ? cap_ : 4096;
        while (cap < live + want)
            cap *= 2;
        auto nb = std::make_unique_for_overwrite<char[]>(cap);
        if (live) std::memcpy(nb.get(), buf_.get() + begin_, live);
        buf_ = std::move(nb);
        cap_ = cap;
    }
    begin_ = 0;
    end_ = live;
}

std::pair<char*, size_t> FrameDecoder::prepare(size_t suggested) {
    if (suggested == 0) suggested = 1;
    if (begin_ == end_) begin_ = end_ = 0;
    size_t want = suggested;
    const size_t live = end_ - begin_;
    if (!broken_ && live >= kFrameHeaderSize) {
        const uint32_t len = read_be32(buf_.get() + begin_);
        if (len != 0 && len <= limits_.max_frame) {
            const size_t frame_end = kFrameHeaderSize + size_t{len};
            // Up to 1 MiB: room for the whole frame at once, so the body is read in place.
            // Beyond: double as bytes arrive, so a peer that declares 16 MiB and stalls does
            // not make us reserve it all.
            constexpr size_t kDirect = 1u << 20;
            size_t target = frame_end <= kDirect ? frame_end : std::max(kDirect, 2 * live);
            if (target > frame_end) target = frame_end;
            if (target > live) want = std::max(want, target - live);
            if (live < frame_end) want = std::min(want, frame_end - live + suggested);
        }
    }
    reserve_free(want);
    return {buf_.get() + end_, cap_ - end_};
}

void FrameDecoder::commit(size_t n) {
    if (n > cap_ - end_) n = cap_ - end_;  // a caller bug must not overrun the buffer
    end_ += n;
}

void FrameDecoder::feed(std::string_view bytes) {
    while (!bytes.empty()) {
        auto [p, room] = prepare(bytes.size());
        const size_t k = std::min(room, bytes.size());
        std::memcpy(p, bytes.data(), k);
        commit(k);
        bytes.remove_prefix(k);
    }
}

FrameDecoder::Decoded FrameDecoder::next() {
    Decoded out;
    if (broken_) {
        out.kind = Kind::kTooLarge;
        out.error = broken_msg_;
        return out;
    }
    const size_t live = end_ - begin_;
    if (live < kFrameHeaderSize) return out;
    const uint32_t len = read_be32(buf_.get() + begin_);
    if (len == 0 || len > limits_.max_frame) {
        broken_ = true;
        broken_msg_ = "frame length " + std::to_string(len) + " is outside 1.." +
                      std::to_string(limits_.max_frame);
        out.kind = Kind::kTooLarge;
        out.error = broken_msg_;
        return out;
    }
    if (live - kFrameHeaderSize < len) return out;
    std::string_view body(buf_.get() + begin_ + kFrameHeaderSize, len);
    begin_ += kFrameHeaderSize + len;
    auto r = decode_frame_body(body, limits_);
    if (!r) {
        out.kind = Kind::kBadFrame;
        out.error = r.status().message();
        return out;
    }
    out.kind = Kind::kFrame;
    out.frame = std::move(r).value();
    return out;
}

void FrameDecoder::trim() {
    if (begin_ != end_) return;
    buf_.reset();
    cap_ = begin_ = end_ = 0;
}

void OutBuffer::write(const char* p, size_t n) {
    if (n == 0) return;
    if (pieces_.empty() || !pieces_.back().shared.empty()) pieces_.emplace_back();
    pieces_.back().owned.append(p, n);
    size_ += n;
}

void OutBuffer::append(const raft::Payload& p) {
    if (p.size() < kShareThreshold) {
        write(p.data(), p.size());
        return;
    }
    pieces_.push_back(Piece{{}, p});
    size_ += p.size();
}

std::vector<std::string_view> OutBuffer::pieces() const {
    std::vector<std::string_view> v;
    v.reserve(pieces_.size());
    for (const Piece& pc : pieces_)
        v.push_back(pc.shared.empty() ? std::string_view(pc.owned) : pc.shared.view());
    return v;
}

std::string OutBuffer::flatten() const {
    std::string s;
    s.reserve(size_);
    append_to(s);
    return s;
}

void OutBuffer::append_to(std::string& s) const {
    for (const Piece& pc : pieces_)
        s.append(pc.shared.empty() ? std::string_view(pc.owned) : pc.shared.view());
}

void OutBuffer::clear() {
    pieces_.clear();
    size_ = 0;
    frames_ = 0;
}

FrameWriter::FrameWriter(OutBuffer& out) : out_(out), pk_(out) {
    const char zero[kFrameHeaderSize] = {};
    if (out_.pieces_.empty() || !out_.pieces_.back().shared.empty()) out_.pieces_.emplace_back();
    piece_ = out_.pieces_.size() - 1;
    offset_ = out_.pieces_.back().owned.size();
    out_.write(zero, sizeof zero);
    start_size_ = out_.size();
}

void FrameWriter::bin(const raft::Payload& p) {
    pk_.pack_bin(static_cast<uint32_t>(p.size()));
    out_.append(p);
}

void FrameWriter::bin(std::string_view bytes) {
    pk_.pack_bin(static_cast<uint32_t>(bytes.size()));
    pk_.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

void FrameWriter::str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

size_t FrameWriter::finish() {
    const size_t len = out_.size() - start_size_;
    char* h = out_.pieces_[piece_].owned.data() + offset_;
    h[0] = static_cast<char>((len >> 24) & 0xff);
    h[1] = static_cast<char>((len >> 16) & 0xff);
    h[2] = static_cast<char>((len >> 8) & 0xff);
    h[3] = static_cast<char>(len & 0xff);
    ++out_.frames_;
    return len;
}

}  // namespace raftd::ipc
