// The exactly-once session table: see sessions.h.
#include "daemon/sessions.h"

#include <algorithm>
#include <cstring>

#include "wal/crc32c.h"

namespace raftd::daemon {

namespace {

constexpr char kSectionMagic[8] = {'r', 'a', 'f', 't', 'd', 's', 'e', 's'};
constexpr uint32_t kBodyVersion = 1;

void put(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        out.push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t get(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

// Reads the body front to back; any short read is a corrupt section.
struct Reader {
    std::string_view s;
    size_t pos = 0;
    bool ok = true;
    uint64_t take(int bytes) {
        if (!ok || s.size() - pos < static_cast<size_t>(bytes)) {
            ok = false;
            return 0;
        }
        uint64_t v = get(s.data() + pos, bytes);
        pos += static_cast<size_t>(bytes);
        return v;
    }
};

}  // namespace

SessionTable::Lookup SessionTable::check(raft::SessionKey key) const {
    if (tomb_set_.count(key.client)) return {Verdict::kExpired, {}};
    auto it = sessions_.find(key.client);
    if (it == sessions_.end()) return {Verdict::kNew, {}};
    const Session& s = it->second;
    auto w = std::lower_bound(s.window.begin(), s.window.end(), key.seq,
                              [](const Seq& a, uint64_t b) { return a.seq < b; });
    if (w != s.window.end() && w->seq == key.seq) return {Verdict::kCommitted, {w->index, w->term}};
    if (key.seq <= s.expired_through) return {Verdict::kExpired, {}};
    return {Verdict::kNew, {}};
}

void SessionTable::apply(const raft::Entry& e) {
    applied_ = e.index;
    if (e.type != raft::EntryType::kData || e.session.empty()) return;
    const uint64_t client = e.session.client;
    // An evicted session stays expired: its earlier seqs may have committed and are no
    // longer known, so it cannot start over under the same id.
    if (tomb_set_.count(client)) return;
    auto [it, created] = sessions_.try_emplace(client);
    Session& s = it->second;
    if (created) {
        s.window.reserve(std::min<size_t>(limits_.window, 16));
        s.lru = lru_.insert(lru_.end(), client);
    } else {
        lru_.splice(lru_.end(), lru_, s.lru);  // most recently committed: no allocation
    }
    s.last_used = e.index;
    record(s, e.session.seq, {e.index, e.term});
    if (created) evict_over_limit();
}

void SessionTable::record(Session& s, uint64_t seq, raft::EntryId id) {
    // Seqs usually commit in increasing order: the common case appends.
    if (s.window.empty() || s.window.back().seq < seq) {
        s.window.push_back({seq, id.index, id.term});
    } else {
        auto w = std::lower_bound(s.window.begin(), s.window.end(), seq,
                                  [](const Seq& a, uint64_t b) { return a.seq < b; });
        // A second copy of a committed key would be a bug in the leader's checks; the
        // first copy stays the answer.
        if (w != s.window.end() && w->seq == seq) return;
        s.window.insert(w, {seq, id.index, id.term});
    }
    trim(s);
}

void SessionTable::trim(Session& s) {
    if (s.window.size() <= limits_.window) return;
    const size_t drop = s.window.size() - limits_.window;
    s.expired_through = std::max(s.expired_through, s.window[drop - 1].seq);
    s.window.erase(s.window.begin(), s.window.begin() + static_cast<ptrdiff_t>(drop));
}

void SessionTable::evict_over_limit() {
    while (sessions_.size() > limits_.max_sessions) {
        const uint64_t victim = lru_.front();
        lru_.pop_front();
        sessions_.erase(victim);
        tomb_order_.push_back(victim);
        tomb_set_.insert(victim);
    }
    while (tomb_order_.size() > limits_.max_sessions) {
        tomb_set_.erase(tomb_order_.front());
        tomb_order_.pop_front();
    }
}

std::string SessionTable::encode() const {
    std::string out;
    size_t seqs = 0;
    for (const auto& [c, s] : sessions_)
        seqs += s.window.size();
    out.reserve(32 + sessions_.size() * 28 + seqs * 24 + tomb_order_.size() * 8);
    put(out, kBodyVersion, 4);
    put(out, applied_, 8);
    put(out, sessions_.size(), 4);
    for (uint64_t client : lru_) {
        const Session& s = sessions_.at(client);
        put(out, client, 8);
        put(out, s.last_used, 8);
        put(out, s.expired_through, 8);
        put(out, s.window.size(), 4);
        for (const Seq& q : s.window) {
            put(out, q.seq, 8);
            put(out, q.index, 8);
            put(out, q.term, 8);
        }
    }
    put(out, tomb_order_.size(), 4);
    for (uint64_t client : tomb_order_)
        put(out, client, 8);
    return out;
}

Result<SessionTable> SessionTable::decode(std::string_view body, Limits limits) {
    auto corrupt = [](const std::string& why) {
        return Status::corruption("snapshot session section: " + why);
    };
    Reader r{body};
    const uint64_t version = r.take(4);
    if (r.ok && version != kBodyVersion)
        return corrupt("unknown version " + std::to_string(version));
    SessionTable t(limits);
    t.applied_ = r.take(8);
    const uint64_t n = r.take(4);
    for (uint64_t i = 0; r.ok && i < n; i++) {
        const uint64_t client = r.take(8);
        Session s;
        s.last_used = r.take(8);
        s.expired_through = r.take(8);
        const uint64_t k = r.take(4);
        if (!r.ok || client == 0 || k > (body.size() - r.pos) / 24)
            return corrupt("bad session record");
        s.window.reserve(k);
        for (uint64_t j = 0; j < k; j++) {
            Seq q{r.take(8), r.take(8), r.take(8)};
            if (!s.window.empty() && s.window.back().seq >= q.seq)
                return corrupt("seqs out of order");
            s.window.push_back(q);
        }
        s.lru = t.lru_.insert(t.lru_.end(), client);
        t.trim(s);
        if (!t.sessions_.emplace(client, std::move(s)).second)
            return corrupt("client " + std::to_string(client) + " twice");
    }
    const uint64_t m = r.take(4);
    for (uint64_t i = 0; r.ok && i < m; i++) {
        const uint64_t client = r.take(8);
        t.tomb_order_.push_back(client);
        t.tomb_set_.insert(client);
    }
    if (!r.ok || r.pos != body.size()) return corrupt("truncated or trailing bytes");
    t.evict_over_limit();
    return t;
}

SessionGate::Decision SessionGate::decide(raft::SessionKey key, bool leader) const {
    const SessionTable::Lookup found = table_.check(key);
    if (found.verdict == SessionTable::Verdict::kCommitted) return {Action::kCommitted, found.id};
    if (found.verdict == SessionTable::Verdict::kExpired) return {Action::kExpired, {}};
    if (leader) {
        if (auto it = open_.find(key); it != open_.end()) return {Action::kAwait, it->second};
    }
    return {Action::kAppend, {}};
}

void SessionGate::committed(const raft::Entry& e) {
    table_.apply(e);
    if (e.session.empty() || open_.empty()) return;
    auto it = open_.find(e.session);
    if (it != open_.end() && it->second.index <= e.index) open_.erase(it);
}

Status SessionGate::role_changed(const raft::Node& node, raft::Index delivered) {
    if (node.role() != raft::Role::kLeader) {
        open_.clear();
        leader_term_ = 0;
        return Status::ok();
    }
    if (leader_term_ == node.term()) return Status::ok();
    leader_term_ = node.term();
    open_.clear();
    // A new leader's log may hold keyed entries of earlier terms that are not committed yet
    // (or committed and not yet delivered): a retry of one must wait for it, never append
    // a second copy that could commit too.
    const raft::RaftLog& log = node.raft().log();
    const raft::Index last = log.last_index();
    constexpr uint64_t kSliceBytes = 4u << 20;
    for (raft::Index lo = delivered + 1; lo <= last;) {
        auto ents = log.slice(lo, last + 1, kSliceBytes);
        if (!ents) return ents.status();
        if (ents->empty()) return Status::internal("no entries at " + std::to_string(lo));
        for (const raft::Entry& e : *ents)
            if (!e.session.empty()) open_[e.session] = {e.index, e.term};
        lo = ents->back().index + 1;
    }
    return Status::ok();
}

void SessionGate::reset(SessionTable t) {
    table_ = std::move(t);
    open_.clear();
    leader_term_ = 0;
}

std::string session_section(const std::string& body) {
    std::string out(kSectionMagic, sizeof kSectionMagic);
    put(out, body.size(), 8);
    put(out, crc32c::mask(crc32c::value(body.data(), body.size())), 4);
    out += body;
    return out;
}

std::optional<uint64_t> session_section_length(std::string_view head) {
    if (head.size() < kSessionSectionHeader ||
        std::memcmp(head.data(), kSectionMagic, sizeof kSectionMagic) != 0)
        return std::nullopt;
    return get(head.data() + 8, 8);
}

bool session_section_intact(std::string_view head, std::string_view body) {
    return head.size() >= kSessionSectionHeader &&
           crc32c::unmask(static_cast<uint32_t>(get(head.data() + 16, 4))) ==
               crc32c::value(body.data(), body.size());
}

}  // namespace raftd::daemon
