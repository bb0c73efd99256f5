// raftd's metrics and their Prometheus rendering: see metrics.h and docs/metrics.md.
#include "daemon/metrics.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "daemon/forward.h"
#include "ipc/frame.h"

namespace raftd::daemon {

namespace {

int64_t steady_ns(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The bounds in nanoseconds, so observe() compares integers.
constexpr std::array<uint64_t, Histogram::kBounds.size()> bounds_ns() {
    std::array<uint64_t, Histogram::kBounds.size()> b{};
    for (size_t i = 0; i < b.size(); ++i)
        b[i] = static_cast<uint64_t>(Histogram::kBounds[i] * 1e9 + 0.5);
    return b;
}
constexpr auto kBoundsNs = bounds_ns();

// Label values: backslash, double quote and newline escaped (exposition format 0.0.4).
std::string label_value(std::string_view v) {
    std::string s;
    for (char c : v) {
        if (c == '\\' || c == '"')
            s += '\\', s += c;
        else if (c == '\n')
            s += "\\n";
        else
            s += c;
    }
    return s;
}

std::string fmt_double(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

class Writer {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void value(std::string_view name, std::string_view labels, uint64_t v) {
        line(name, labels);
        out_ += std::to_string(v);
        out_ += '\n';
    }
    void value(std::string_view name, std::string_view labels, const std::string& v) {
        line(name, labels);
        out_ += v;
        out_ += '\n';
    }
    // One family of one value.
    void single(std::string_view name, std::string_view type, std::string_view help, uint64_t v) {
        family(name, type, help);
        value(name, "", v);
    }
    void histogram(std::string_view name, std::string_view help, const Histogram& h) {
        family(name, "histogram", help);
        const Histogram::Sample s = h.sample();
        const std::string bucket = std::string(name) + "_bucket";
        uint64_t cum = 0;
        for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
            cum += s.buckets[i];
            value(bucket, "le=\"" + fmt_double(Histogram::kBounds[i]) + "\"", cum);
        }
        value(bucket, "le=\"+Inf\"", s.count);
        value(std::string(name) + "_sum", "", fmt_double(s.sum_seconds));
        value(std::string(name) + "_count", "", s.count);
    }
    std::string take() { return std::move(out_); }

  private:
    void line(std::string_view name, std::string_view labels) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
    }
    std::string out_;
};

std::string peer_label(uint64_t id) {
    return "peer=\"" + std::to_string(id) + "\"";
}

// Per-peer families: one series per peer the loop published.
template <typename Get>
void per_peer(Writer& w, const LoopSample& s, std::string_view name, std::string_view type,
              std::string_view help, Get get) {
    w.family(name, type, help);
    for (const auto& p : s.peers)
        if (auto v = get(p)) w.value(name, peer_label(p.id), *v);
}

void json_string(std::string& out, std::string_view v) {
    out += '"';
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

// msgpack as JSON: what the status reply holds (maps with string keys, strings, integers,
// booleans, arrays); bin as a string of hex digits.
void to_json(std::string& out, const msgpack::object& o) {
    switch (o.type) {
        case msgpack::type::NIL:
            out += "null";
            break;
        case msgpack::type::BOOLEAN:
            out += o.via.boolean ? "true" : "false";
            break;
        case msgpack::type::POSITIVE_INTEGER:
            out += std::to_string(o.via.u64);
            break;
        case msgpack::type::NEGATIVE_INTEGER:
            out += std::to_string(o.via.i64);
            break;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            out += fmt_double(o.via.f64);
            break;
        case msgpack::type::STR:
            json_string(out, std::string_view(o.via.str.ptr, o.via.str.size));
            break;
        case msgpack::type::BIN: {
            std::string hex;
            char buf[4];
            for (uint32_t i = 0; i < o.via.bin.size; ++i) {
                std::snprintf(buf, sizeof buf, "%02x",
                              static_cast<unsigned char>(o.via.bin.ptr[i]));
                hex += buf;
            }
            json_string(out, hex);
            break;
        }
        case msgpack::type::ARRAY:
            out += '[';
            for (uint32_t i = 0; i < o.via.array.size; ++i) {
                if (i) out += ',';
                to_json(out, o.via.array.ptr[i]);
            }
            out += ']';
            break;
        case msgpack::type::MAP: {
            out += '{';
            bool first = true;
            for (uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                if (kv.key.type != msgpack::type::STR) continue;
                if (!first) out += ',';
                first = false;
                json_string(out, std::string_view(kv.key.via.str.ptr, kv.key.via.str.size));
                out += ':';
                to_json(out, kv.val);
            }
            out += '}';
            break;
        }
        default:
            out += "null";
    }
}

}  // namespace

// ---- counters and histograms --------------------------------------------------------------

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
    const uint64_t ns = d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
    size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i])
        ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

Histogram::Sample Histogram::sample() const noexcept {
    Sample s;
    for (size_t i = 0; i < buckets_.size(); ++i) {
        s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
        s.count += s.buckets[i];
    }
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

void Metrics::proposal_done(const std::optional<ipc::ErrorCode>& failed,
                            std::chrono::steady_clock::time_point t0) noexcept {
    if (failed)
        proposals_failed[static_cast<size_t>(*failed)].inc();
    else
        proposals_ok.inc();
    proposal_seconds.observe_since(t0);
}

void Metrics::storage_write_began() noexcept {
    write_began_ns_.store(steady_ns(std::chrono::steady_clock::now()), std::memory_order_relaxed);
}

std::chrono::nanoseconds Metrics::storage_write_age() const noexcept {
    const int64_t began = write_began_ns_.load(std::memory_order_relaxed);
    if (began == 0) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(
        std::max<int64_t>(0, steady_ns(std::chrono::steady_clock::now()) - began));
}

void Metrics::publish(LoopSample s) {
    std::lock_guard lock(mu_);
    std::swap(sample_, s);
    // `s`, the old sample, is freed after the lock is released.
}

LoopSample Metrics::sample() const {
    std::lock_guard lock(mu_);
    return sample_;
}

Metrics& metrics() {
    static Metrics m;
    return m;
}

// ---- rendering ---------------------------------------------------------------------------

std::string render_prometheus(const Metrics& m, const LoopSample& s) {
    Writer w;
    w.family("raftd_info", "gauge", "Always 1; labels name the node, its cluster and version.");
    w.value("raftd_info",
            "node_id=\"" + std::to_string(s.node_id) + "\",cluster=\"" + label_value(s.cluster) +
                "\",version=\"" + label_value(s.version) + "\"",
            1);
    // ---- raft state (published by the loop) ----
    w.single("raftd_is_leader", "gauge", "1 on the leader, 0 elsewhere.", s.role == "leader");
    w.family("raftd_role", "gauge", "1 for this node's current role, 0 for the others.");
    for (std::string_view r : {"leader", "follower", "candidate", "pre_candidate"})
        w.value("raftd_role", "role=\"" + std::string(r) + "\"", s.role == r);
    w.single("raftd_term", "gauge", "The current Raft term.", s.term);
    w.single("raftd_leader_id", "gauge", "The leader this node knows of (0: none).", s.leader);
    w.single("raftd_commit_index", "gauge",
             "Highest index committed and durable on this node (the commit stream's end).",
             s.commit);
    w.single("raftd_applied_index", "gauge", "Highest index Raft has handed to the pipeline.",
             s.applied);
    w.single("raftd_first_index", "gauge", "First index still in the log.", s.first_index);
    w.single("raftd_last_index", "gauge", "Last index in the log.", s.last_index);
    w.single("raftd_snapshot_index", "gauge", "Index of the latest snapshot.", s.snapshot_index);
    // ---- proposals and reads ----
    w.family("raftd_proposals_total", "counter",
             "Proposals answered by this node, by result: ok or the protocol error code.");
    w.value("raftd_proposals_total", "result=\"ok\"", m.proposals_ok.value());
    for (size_t i = 0; i < kErrorCodeCount; ++i)
        w.value(
            "raftd_proposals_total",
            "result=\"" + std::string(ipc::error_code_name(static_cast<ipc::ErrorCode>(i))) + "\"",
            m.proposals_failed[i].value());
    w.histogram("raftd_proposal_duration_seconds",
                "Time from a proposal reaching the node that appends it to its answer.",
                m.proposal_seconds);
    w.histogram("raftd_read_index_duration_seconds",
                "Time from a read_index request to its answer.", m.read_index_seconds);
    // ---- storage ----
    w.histogram("raftd_wal_fsync_duration_seconds",
                "Duration of each fsync/fdatasync of the WAL and metadata (its _count is the "
                "number of syncs).",
                m.fsync_seconds);
    w.single("raftd_wal_written_bytes_total", "counter",
             "Entry payload bytes made durable in the log.", m.written_bytes.value());
    w.single("raftd_wal_written_entries_total", "counter", "Entries made durable in the log.",
             m.written_entries.value());
    // ---- elections and snapshots ----
    w.single("raftd_elections_started_total", "counter",
             "Elections this node started (became candidate).", m.elections_started.value());
    w.single("raftd_elections_won_total", "counter", "Elections this node won.",
             m.elections_won.value());
    w.single("raftd_leader_changes_total", "counter",
             "Times this node saw the leader change to another node.", m.leader_changes.value());
    w.single("raftd_snapshots_sent_total", "counter", "Snapshots this node began sending.",
             m.snapshots_sent.value());
    w.single("raftd_snapshots_received_total", "counter",
             "Snapshots this node received completely from a leader.",
             m.snapshots_received.value());
    w.single("raftd_snapshots_installed_total", "counter",
             "Snapshots from a leader installed by this node.", m.snapshots_installed.value());
    // ---- peers ----
    using O = std::optional<uint64_t>;
    per_peer(w, s, "raftd_peer_connected", "gauge",
             "1 while the connection this node dialled to the peer is up.",
             [](const PeerSample& p) { return O(p.connected); });
    per_peer(w, s, "raftd_peer_reconnects_total", "counter",
             "Connections to the peer re-established after the first.",
             [](const PeerSample& p) { return O(p.reconnects); });
    per_peer(w, s, "raftd_peer_send_queue_bytes", "gauge",
             "Bytes queued for the peer or being written to it.",
             [](const PeerSample& p) { return O(p.queue_bytes); });
    per_peer(w, s, "raftd_peer_sent_messages_total", "counter",
             "Raft messages queued for sending to the peer.",
             [](const PeerSample& p) { return O(p.sent_messages); });
    per_peer(w, s, "raftd_peer_sent_bytes_total", "counter",
             "Bytes of raft messages queued for sending to the peer.",
             [](const PeerSample& p) { return O(p.sent_bytes); });
    per_peer(w, s, "raftd_peer_dropped_messages_total", "counter",
             "Messages to the peer dropped (not connected or send queue full).",
             [](const PeerSample& p) { return O(p.dropped_messages); });
    per_peer(w, s, "raftd_peer_received_messages_total", "counter",
             "Raft messages received from the peer.",
             [](const PeerSample& p) { return O(p.received_messages); });
    per_peer(w, s, "raftd_peer_received_bytes_total", "counter",
             "Bytes of frames received from the peer.",
             [](const PeerSample& p) { return O(p.received_bytes); });
    per_peer(w, s, "raftd_peer_match_index", "gauge",
             "Leader only: the highest index known replicated on the peer.",
             [](const PeerSample& p) { return p.has_match ? O(p.match_index) : O(); });
    per_peer(w, s, "raftd_peer_behind_entries", "gauge",
             "Leader only: entries of the leader's log not yet replicated on the peer.",
             [&s](const PeerSample& p) {
                 return p.has_match
                            ? O(s.last_index > p.match_index ? s.last_index - p.match_index : 0)
                            : O();
             });
    // ---- clients ----
    w.single("raftd_client_connections", "gauge", "Client connections open.", s.client_connections);
    w.single("raftd_subscriptions", "gauge", "Commit-stream subscriptions open.", s.subscriptions);
    w.single("raftd_stalled_subscribers", "gauge",
             "Connections with subscriptions whose reading is paused because the client does "
             "not drain its output.",
             s.stalled_subscribers);
    return w.take();
}

// ---- health ------------------------------------------------------------------------------

HealthVerdict health(const LoopSample& s, std::chrono::steady_clock::time_point now,
                     std::chrono::nanoseconds write_age, const HealthLimits& lim) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    auto secs = [](auto d) {
        return fmt_double(static_cast<double>(duration_cast<milliseconds>(d).count()) / 1000.0);
    };
    if (!s.valid) return {false, "starting"};
    if (s.stopping) return {false, "stopping"};
    if (write_age >= lim.stuck_write)
        return {false, "storage: a durable write has been running for " + secs(write_age) + " s"};
    if (now - s.at >= lim.stale_sample)
        return {false, "the event loop has not run for " + secs(now - s.at) + " s"};
    if (s.awaiting_peers) return {false, "waiting for peers to bootstrap"};
    if (s.leader == 0)
        return {false, "no leader known (" + s.role + ", term " + std::to_string(s.term) + ")"};
    return {true, "ok: " + s.role + ", leader " + std::to_string(s.leader) + ", term " +
                      std::to_string(s.term)};
}

std::string status_json(const ipc::StatusReply& r) {
    const std::string body = reply_body(r);
    auto f = ipc::decode_frame_body(body);
    if (!f) return "{}";
    // The reply's own envelope (id, ok) is the protocol's, not the status.
    std::string out = "{";
    bool first = true;
    const msgpack::object& root = f->root();
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
        if (k == "id" || k == "ok") continue;
        if (!first) out += ',';
        first = false;
        json_string(out, k);
        out += ':';
        to_json(out, kv.val);
    }
    out += "}\n";
    return out;
}

}  // namespace raftd::daemon
