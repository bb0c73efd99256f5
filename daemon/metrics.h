// Metrics: raftd's Prometheus metrics (docs/metrics.md lists every one) and the /health rule.
//
// Two kinds of values, kept apart so that the hot paths never lock or allocate:
// - Counters and histograms (`Counter`, `Histogram`) are relaxed atomics incremented where
//   the event happens: the loop thread (proposals, reads, elections), the storage thread
//   (bytes and entries written) and the fsync hook of wal::Env (whichever thread syncs).
//   One relaxed fetch_add per event; a histogram adds a scan of 16 bounds.
// - Everything the loop thread owns and must not share (raft state, the transport's peers,
//   the client server) is copied by the loop thread into a `LoopSample` and published with
//   `publish()` on a timer (MetricsPublisher, http.h): one short mutex-protected swap per
//   period, never per event. Readers copy the latest sample under the same mutex.
//
// Owns: the process's one Metrics instance (`metrics()`), the Prometheus text rendering
// (format 0.0.4) and the health verdict computed from a sample.
// Never: read raft or transport state itself (only what the loop published), block the
// thread that increments, or allocate on an increment.
//
// Thread rules: Counter/Histogram: any thread. publish(): the loop thread. sample(),
// render_prometheus(), health(): any thread (the HTTP server's).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "ipc/protocol.h"

namespace raftd::daemon {

class Counter {
  public:
    void inc(uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> v_{0};
};

// A latency histogram with fixed bounds (seconds), from 100 µs to 10 s: fsyncs on an SSD
// land in the first buckets, an election-long wait in the last ones.
class Histogram {
  public:
    static constexpr std::array<double, 16> kBounds = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    void observe(std::chrono::nanoseconds d) noexcept;
    void observe_since(std::chrono::steady_clock::time_point t0) noexcept {
        observe(std::chrono::steady_clock::now() - t0);
    }

    struct Sample {
        std::array<uint64_t, kBounds.size() + 1>
            buckets{};       // per bucket, +Inf last (not cumulative)
        uint64_t count = 0;  // the sum of `buckets`, so a scrape is self-consistent
        double sum_seconds = 0;
    };
    Sample sample() const noexcept;

  private:
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
    std::atomic<uint64_t> sum_ns_{0};
};

// One peer as the loop thread last saw it (the transport's counters are loop-thread values).
struct PeerSample {
    uint64_t id = 0;
    bool connected = false;    // our outbound connection has completed its handshake
    uint64_t queue_bytes = 0;  // queued for it and being written
    uint64_t sent_messages = 0, sent_bytes = 0;
    uint64_t received_messages = 0, received_bytes = 0;
    uint64_t dropped_messages = 0;
    uint64_t reconnects = 0;  // handshakes completed after the first one
    bool has_match = false;   // leader only: the follower's progress below
    uint64_t match_index = 0;
};

// What the loop thread publishes each period: the gauges, and the inputs of /health and
// /status.
struct LoopSample {
    bool valid = false;
    std::chrono::steady_clock::time_point at{};
    uint64_t node_id = 0;
    std::string cluster, version;
    std::string role;  // the wire names of docs/protocol.md: leader, follower, candidate, ...
    uint64_t term = 0, leader = 0;
    uint64_t commit = 0, applied = 0, first_index = 0, last_index = 0, snapshot_index = 0;
    uint64_t client_connections = 0, subscriptions = 0, stalled_subscribers = 0;
    bool stopping = false;
    bool awaiting_peers = false;  // an empty store waiting for its peers to bootstrap
    std::vector<PeerSample> peers;
    std::string status_json;  // the `status` reply, for /status
};

constexpr size_t kErrorCodeCount = 0
#define RAFTD_COUNT_CODE(name, wire) +1
    RAFTD_PROTOCOL_ERROR_CODES(RAFTD_COUNT_CODE)
#undef RAFTD_COUNT_CODE
    ;

class Metrics {
  public:
    // ---- events (any thread) -------------------------------------------------------------
    Counter proposals_ok;
    std::array<Counter, kErrorCodeCount> proposals_failed;  // by ipc::ErrorCode
    Histogram proposal_seconds;                             // from arrival to reply
    Histogram read_index_seconds;
    Histogram fsync_seconds;  // every fsync-family call of the WAL and metadata
    Counter written_bytes, written_entries;
    Counter elections_started, elections_won, leader_changes;
    Counter snapshots_sent, snapshots_received, snapshots_installed;

    void proposal_done(const std::optional<ipc::ErrorCode>& failed,
                       std::chrono::steady_clock::time_point t0) noexcept;

    // The storage thread (or the loop, writing inline) brackets each durable write, so the
    // HTTP thread can tell a disk that stopped answering (health()) even while the loop is
    // itself stuck behind it.
    void storage_write_began() noexcept;
    void storage_write_ended() noexcept { write_began_ns_.store(0, std::memory_order_relaxed); }
    // How long the write in progress has been running (0 when none).
    std::chrono::nanoseconds storage_write_age() const noexcept;

    // ---- the loop thread's sample ---------------------------------------------------------
    void publish(LoopSample s);
    LoopSample sample() const;

  private:
    std::atomic<int64_t> write_began_ns_{0};
    mutable std::mutex mu_;
    LoopSample sample_;
};

// The process's one instance (raftd runs one node per process).
Metrics& metrics();

// Every metric family raftd exports, in the Prometheus text format 0.0.4. Families without
// a series (no peers yet) still get their HELP and TYPE lines.
std::string render_prometheus(const Metrics& m, const LoopSample& s);

// /health: ok when the loop published recently, the node is not stopping, no durable write
// has been stuck for long, and the node knows a leader. `reason` is one line.
struct HealthVerdict {
    bool ok = false;
    std::string reason;
};
struct HealthLimits {
    std::chrono::milliseconds stale_sample{5000};  // the loop has not published for this long
    std::chrono::milliseconds stuck_write{10000};  // one durable write running this long
};
HealthVerdict health(const LoopSample& s, std::chrono::steady_clock::time_point now,
                     std::chrono::nanoseconds write_age, const HealthLimits& lim = {});

// The `status` reply as JSON (docs/protocol.md names the fields; /status serves it).
std::string status_json(const ipc::StatusReply& r);

}  // namespace raftd::daemon
