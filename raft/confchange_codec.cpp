#include "raft/confchange_codec.h"

#include <cstdint>
#include <vector>

namespace raftd::raft {

namespace {

constexpr char kChangeMagic = 'C';
constexpr char kStateMagic = 'S';
constexpr uint8_t kVersion = 1;

class Writer {
  public:
    void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(uint32_t v) {
        for (int i = 0; i < 4; ++i)
            u8(static_cast<uint8_t>(v >> (8 * i)));
    }
    void u64(uint64_t v) {
        for (int i = 0; i < 8; ++i)
            u8(static_cast<uint8_t>(v >> (8 * i)));
    }
    void str(const std::string& s) {
        u32(static_cast<uint32_t>(s.size()));
        out_ += s;
    }
    void ids(const std::vector<NodeId>& v) {
        u32(static_cast<uint32_t>(v.size()));
        for (NodeId id : v)
            u64(id);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

class Reader {
  public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool u8(uint8_t& v) {
        if (in_.size() - pos_ < 1) return false;
        v = static_cast<uint8_t>(in_[pos_++]);
        return true;
    }
    bool u32(uint32_t& v) {
        if (in_.size() - pos_ < 4) return false;
        v = 0;
        for (int i = 0; i < 4; ++i)
            v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
        pos_ += 4;
        return true;
    }
    bool u64(uint64_t& v) {
        if (in_.size() - pos_ < 8) return false;
        v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
        pos_ += 8;
        return true;
    }
    bool str(std::string& s) {
        uint32_t n;
        if (!u32(n) || in_.size() - pos_ < n) return false;
        s.assign(in_.substr(pos_, n));
        pos_ += n;
        return true;
    }
    bool ids(std::vector<NodeId>& v) {
        uint32_t n;
        if (!u32(n) || (in_.size() - pos_) / 8 < n) return false;
        v.resize(n);
        for (auto& id : v)
            u64(id);
        return true;
    }
    size_t remaining() const { return in_.size() - pos_; }

  private:
    std::string_view in_;
    size_t pos_ = 0;
};

Status bad(const char* what) {
    return Status::corruption(std::string("config encoding: ") + what);
}

Status read_header(Reader& r, char magic) {
    uint8_t m, v;
    if (!r.u8(m) || !r.u8(v)) return bad("truncated header");
    if (static_cast<char>(m) != magic) return bad("wrong magic byte");
    if (v != kVersion) return bad("unknown version");
    return Status::ok();
}

}  // namespace

std::string encode_conf_change(const ConfChange& cc) {
    Writer w;
    w.u8(static_cast<uint8_t>(kChangeMagic));
    w.u8(kVersion);
    w.u8(static_cast<uint8_t>(cc.transition));
    w.u32(static_cast<uint32_t>(cc.changes.size()));
    for (const auto& c : cc.changes) {
        w.u8(static_cast<uint8_t>(c.type));
        w.u64(c.node);
        w.str(c.addr);
    }
    return w.take();
}

Result<ConfChange> decode_conf_change(std::string_view bytes) {
    Reader r(bytes);
    if (Status st = read_header(r, kChangeMagic); !st) return st;
    ConfChange cc;
    uint8_t transition;
    uint32_t n;
    if (!r.u8(transition) || !r.u32(n)) return bad("truncated change header");
    if (transition > static_cast<uint8_t>(ConfTransition::kJointExplicit))
        return bad("unknown transition");
    cc.transition = static_cast<ConfTransition>(transition);
    // Each change takes at least 13 bytes: refuse counts the input cannot hold before allocating.
    if (r.remaining() / 13 < n) return bad("change count exceeds input");
    cc.changes.resize(n);
    for (auto& c : cc.changes) {
        uint8_t type;
        if (!r.u8(type) || !r.u64(c.node) || !r.str(c.addr)) return bad("truncated change");
        if (type < 1 || type > 3) return bad("unknown change type");
        c.type = static_cast<ConfChangeType>(type);
    }
    if (r.remaining() != 0) return bad("trailing bytes");
    return cc;
}

std::string encode_conf_state(const ConfState& cs) {
    Writer w;
    w.u8(static_cast<uint8_t>(kStateMagic));
    w.u8(kVersion);
    w.u8(cs.auto_leave ? 1 : 0);
    w.ids(cs.voters);
    w.ids(cs.learners);
    w.ids(cs.voters_outgoing);
    w.ids(cs.learners_next);
    w.u32(static_cast<uint32_t>(cs.addrs.size()));
    for (const auto& m : cs.addrs) {
        w.u64(m.id);
        w.str(m.addr);
    }
    return w.take();
}

Result<ConfState> decode_conf_state(std::string_view bytes) {
    Reader r(bytes);
    if (Status st = read_header(r, kStateMagic); !st) return st;
    ConfState cs;
    uint8_t flags;
    if (!r.u8(flags)) return bad("truncated flags");
    if (flags > 1) return bad("unknown flags");
    cs.auto_leave = flags == 1;
    if (!r.ids(cs.voters) || !r.ids(cs.learners) || !r.ids(cs.voters_outgoing) ||
        !r.ids(cs.learners_next)) {
        return bad("truncated id list");
    }
    uint32_t n;
    if (!r.u32(n)) return bad("truncated address count");
    if (r.remaining() / 12 < n) return bad("address count exceeds input");
    cs.addrs.resize(n);
    for (auto& m : cs.addrs) {
        if (!r.u64(m.id) || !r.str(m.addr)) return bad("truncated address");
    }
    if (r.remaining() != 0) return bad("trailing bytes");
    return cs;
}

}  // namespace raftd::raft
