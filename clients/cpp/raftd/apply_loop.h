// raftd apply loop: the code between a node's commit stream and an application's state
// machine, which every application on raftd needs and should not rewrite.
//
// Give it three callbacks and a snapshot policy:
//   apply(entry)      applies one committed entry to the state (every entry, in index order,
//                     each exactly once per state: data, noop and config alike)
//   snapshot()        the state's bytes as of applied() (optional: without it, no uploads)
//   restore(bytes, i) replaces the whole state with a snapshot through index i
// and it subscribes from applied() + 1, assembles snapshot chunks (a chunk with offset 0
// starts over, docs/protocol.md 6.3), checks that indexes are contiguous (a gap or a repeat
// is an error and nothing of it is applied), uploads a snapshot every N entries or bytes in
// chunks of at most the server's max_entry, and reconnects and resubscribes with bounded
// backoff when the daemon restarts. wait_applied() gives read-your-writes; read_barrier()
// (read_index + wait_applied) gives linearizable reads of the local state.
//
//   raftd::client::ApplyCallbacks cb;
//   cb.apply = [&](const raftd::client::Entry& e) { if (e.type == "data") state.apply(e.data); };
//   cb.snapshot = [&] { return state.encode(); };
//   cb.restore = [&](std::string_view b, uint64_t) { return state.decode(b); };
//   auto loop = raftd::client::ApplyLoop::open(socket, cb, {.snapshot = {.every_entries = 1000}});
//   auto p = (*loop)->propose("incr", deadline);              // never retried by the loop
//   if (p) (*loop)->wait_applied(p->index, deadline);         // read-your-writes
//   if ((*loop)->read_barrier(deadline)) read(state);         // linearizable read
//
// Thread model: an ApplyLoop belongs to one thread at a time, like a Client. All three
// callbacks run on that thread, inside poll(), wait_applied(), read_barrier() or propose():
// never concurrently, never after the call returns. Callbacks must not call back into the
// loop (they may read and write the application's own state freely). applied() alone may
// be read from any thread. A multi-threaded application runs the loop on one thread and
// hands proposals and reads to it (or proposes on its own Client, then asks the loop's
// thread to wait_applied(index)).
//
// Errors are values. A gap, a malformed snapshot stream or a failed restore stops the loop
// for good (every later call returns that error): the state can no longer be trusted and
// the application must rebuild it (e.g. restart from applied 0). A lost connection is not an
// error until reconnecting has failed for reconnect_give_up_ms; a failed snapshot upload is
// never one (counted in stats(), retried at the next policy point).
//
// Owns: its own connection (a Client) and subscription, the queue of received events, a
// partial snapshot, the backoff state. Never: retry a proposal (a retry could commit twice),
// apply an entry out of order, or keep a partial snapshot across a resubscription.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "raftd/client.h"

namespace raftd::client {

// One committed entry, as apply() receives it.
struct Entry {
    uint64_t index = 0, term = 0;
    std::string type;                // "data" | "noop" | "config"
    std::string data;                // the proposed bytes (empty for noop)
    std::optional<Members> members;  // config entries: the configuration it establishes
};

struct ApplyCallbacks {
    // Required. Must be deterministic (no clocks, no randomness: time comes in the entries).
    std::function<void(const Entry&)> apply;
    // The state's bytes as of the last applied entry. Optional: without it nothing is uploaded.
    std::function<std::string()> snapshot;
    // Replaces the state with `data`, a snapshot through `index`. Required whenever the node
    // may send a snapshot (its log was compacted below applied() + 1); an error stops the loop.
    std::function<Result<Unit>(std::string_view data, uint64_t index)> restore;
};

// When to upload a snapshot: after every_entries entries or every_bytes bytes of entry data
// applied since the last snapshot (or restore), whichever comes first; 0 turns a rule off.
struct SnapshotPolicy {
    uint64_t every_entries = 0;
    uint64_t every_bytes = 0;
};

struct ApplyOptions {
    SnapshotPolicy snapshot;
    // The index the application's state already reflects (0: an empty state). The stream
    // starts at applied + 1.
    uint64_t applied = 0;
    // Reconnect backoff: the first retry after reconnect_min_ms, doubling up to
    // reconnect_max_ms; after reconnect_give_up_ms without a subscription the pending call
    // returns CONNECTION (the next call starts a new round).
    int reconnect_min_ms = 20;
    int reconnect_max_ms = 1000;
    int reconnect_give_up_ms = 30000;
    // Deadline of each request on the loop's connection (Options::timeout_ms).
    int request_timeout_ms = 10000;
    std::string name = "raftd-apply";  // sent in hello
};

struct ApplyStats {
    uint64_t entries = 0;            // apply() calls
    uint64_t restores = 0;           // restore() calls
    uint64_t snapshots = 0;          // uploads answered ok (including ones already covered)
    uint64_t snapshot_failures = 0;  // uploads the node refused (a lost connection is not one)
    uint64_t reconnects = 0;         // subscriptions made after the first
    std::optional<Error> last_snapshot_error;
};

// The stream state machine the loop uses, without I/O: feed it a subscription's events in
// order. Public so that an application with its own connection can use it too, and tests.
class StreamApplier {
  public:
    StreamApplier(const ApplyCallbacks* cb, uint64_t applied) : cb_(cb), applied_(applied) {}
    // Applies an entry, or adds a snapshot chunk (restoring once it is complete). An entry
    // that is not applied() + 1, a chunk that does not continue the snapshot being assembled
    // (or start one at offset 0), or a failed restore is an error, and nothing of it applied.
    Result<Unit> feed(const Event& ev);
    // A new subscription: an unfinished snapshot from the old one is discarded.
    void reset_partial();
    uint64_t applied() const { return applied_; }
    // Entries and data bytes applied since the last snapshot upload or restore.
    bool snapshot_due(const SnapshotPolicy& p) const;
    void snapshot_taken() { since_entries_ = since_bytes_ = 0; }
    uint64_t entries() const { return entries_; }
    uint64_t restores() const { return restores_; }

  private:
    const ApplyCallbacks* cb_;
    uint64_t applied_;
    uint64_t since_entries_ = 0, since_bytes_ = 0;
    uint64_t entries_ = 0, restores_ = 0;
    bool assembling_ = false;
    uint64_t snap_index_ = 0;
    std::string partial_;
};

class ApplyLoop {
  public:
    using Clock = std::chrono::steady_clock;

    // Connects to `socket_path` and subscribes from options.applied + 1 (one attempt: an
    // error here is returned, not retried). An options.applied beyond the node's last index
    // is BAD_REQUEST.
    static Result<std::unique_ptr<ApplyLoop>> open(const std::string& socket_path,
                                                   ApplyCallbacks callbacks,
                                                   ApplyOptions options = {});
    ~ApplyLoop();
    ApplyLoop(const ApplyLoop&) = delete;
    ApplyLoop& operator=(const ApplyLoop&) = delete;

    // Receives for up to timeout_ms (0: only what is ready), applies what arrived, uploads
    // a snapshot when the policy says so, and reconnects when the stream was lost.
    Result<Unit> poll(int timeout_ms);
    // Runs the loop until applied() >= index (Unit) or the deadline (TIMEOUT).
    Result<Unit> wait_applied(uint64_t index, Clock::time_point deadline);
    // A linearizable read point: asks for a read index (retrying a lost connection, no
    // leader or a shutdown until the deadline: a read_index is safe to repeat), then waits
    // until it is applied. Returns the read index; the local state then reflects every
    // write acknowledged before the call.
    Result<uint64_t> read_barrier(Clock::time_point deadline);
    // Proposes `data` once on the loop's connection (connecting first if needed, until the
    // deadline) and returns its index and term; never retried. CONNECTION after sending
    // means it may still commit, like INDETERMINATE. Follow with wait_applied(index).
    Result<Proposed> propose(std::string_view data, Clock::time_point deadline);

    // The index the state reflects. Any thread.
    uint64_t applied() const { return applied_.load(std::memory_order_acquire); }
    // Subscribed and the stream not lost. False from the moment a loss was noticed (what
    // arrived before it is applied by then) until a resubscription succeeded.
    bool connected() const { return conn_ && !lost_; }
    const ApplyStats& stats() const { return stats_; }

  private:
    ApplyLoop(std::string socket_path, ApplyCallbacks callbacks, ApplyOptions options);
    // One round of I/O until `deadline`: receive or reconnect, then apply what is queued.
    Result<Unit> step(Clock::time_point deadline);
    Result<Unit> drain();
    void upload_snapshot();
    // Connects and subscribes from applied() + 1 while `deadline` allows; false: not yet.
    Result<bool> reconnect(Clock::time_point deadline);
    Result<Unit> subscribe_on(std::unique_ptr<Client> conn);
    Result<Unit> ensure_connected(Clock::time_point deadline);
    void lose(const Error& why);

    std::string socket_;
    ApplyCallbacks cb_;
    ApplyOptions opts_;
    StreamApplier applier_;
    std::atomic<uint64_t> applied_;
    ApplyStats stats_;
    std::unique_ptr<Client> conn_;
    uint64_t generation_ = 0;  // the subscription whose events are still wanted
    bool lost_ = false;        // the stream ended: resubscribe before receiving more
    std::deque<Event> queue_;  // received, not yet applied (callbacks only queue)
    std::optional<Error> fatal_;
    // Reconnecting: when the stream was lost, the next attempt, the current backoff.
    std::optional<Clock::time_point> lost_since_;
    Clock::time_point next_attempt_{};
    int backoff_ms_ = 0;
    std::optional<Error> last_connect_error_;
};

}  // namespace raftd::client
