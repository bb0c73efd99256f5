// ReadyPipeline: the daemon's persist/send/deliver cycle for one raft::Node, as a component
// with no I/O. It takes each Ready, decides what leaves at once, what is written where, and
// what waits for which write, and tells the outside through PipelineActions. NodeHost adapts
// it to libuv, the transport and the storage thread; the scenario scripts under
// tests/scenarios/pipeline/ and the pipeline simulation drive it over fakes.
//
// Events in: process() (raft was fed: take the Readies it has), tick(), persisted() (the
// oldest job handed to the storage thread finished), stop().
// Actions out (PipelineActions): send messages, persist a job on this thread or hand it to
// the storage thread, flush client replies, deliver committed entries and read states,
// report a snapshot install, role/term changes, "advanced", fatal, drained.
//
// Owns: the ordering rules of docs/raft.md ("The daemon's pipeline") and where each is kept:
//   - a follower's acknowledgement, a vote and a candidate's request (persisted_messages)
//     leave only after the job holding what they promise is durable;
//   - a leader's AppendEntries leave before its own write; its own entries count toward the
//     quorum only once durable (Node::entries_persisted);
//   - committed entries are delivered, and so client replies written, only once durable on
//     a quorum and locally (raft hands out no others; the pipeline never delivers entries
//     of a job still being written);
//   - every job that carries entries carries the newest hard state known when the job is
//     built, so the commit index is made durable in the same sync as the entries
//     (DurableStore::persist); leader entries still waiting are built into a job before a
//     newer Ready's hard state (perhaps a new term's) is adopted; a hard state that changes
//     only the commit index and comes without entries may be written lazily (with the next
//     batch, on a tick, or at stop);
//   - jobs reach the store in the order they were built: one job on this thread only when
//     nothing is queued on or running in the storage thread.
// Never: I/O, threads, clocks or libuv of its own; retry a failed write (the failure is
// fatal: the page cache may have dropped the data); call an action after fatal() or drained().
//
// Thread rules: single-threaded. Every event and every action runs on the caller's thread
// (the loop thread); actions run synchronously inside the event that causes them, and may
// feed the Node (a reply callback proposing again): process() is re-entrancy safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "daemon/durable.h"
#include "raft/node.h"
#include "raft/ready.h"
#include "raft/status.h"

namespace raftd::daemon {

struct PipelineStats {
    uint64_t readies = 0;
    // Jobs handed to the store: inline_jobs on the loop thread, the rest to the storage thread.
    uint64_t persist_jobs = 0;
    uint64_t persisted_entries = 0;
    uint64_t committed_entries = 0;
    uint64_t lazy_commit_writes = 0;  // commit-only hard states not waited for
    uint64_t inline_jobs = 0;         // jobs persisted on the loop thread
    uint64_t leader_async_jobs = 0;   // a leader's own entries, written while replication goes on
};

// What advance() meant, for the adapter's follow-up (membership) and for traces.
struct Advanced {
    // Node::advance_except_entries(): the Ready's entries (a leader's own) are still being
    // written; they count once `PipelineActions::own_entries_durable` reports them.
    bool entries_pending = false;
    // A configuration entry or a snapshot was delivered with this Ready: the membership may
    // have changed (compare Node::conf_state()).
    bool conf_may_change = false;
};

// The outside world of a ReadyPipeline. Implemented by NodeHost (libuv, transport, storage
// thread) and by test fakes.
class PipelineActions {
  public:
    virtual ~PipelineActions() = default;

    // Messages that may leave now, in order: hand them to the transport and flush it.
    virtual void send(const std::vector<raft::Message>& msgs) = 0;

    // Whether the storage thread has nothing queued or running (a job of this pipeline or
    // anything else of the store, e.g. an application snapshot upload). Only then may a job be
    // persisted on this thread: the store is used by one thread at a time, in job order.
    virtual bool storage_idle() = 0;
    // Make `job` durable now, on this thread. A failure is fatal (the pipeline stops).
    virtual Status persist_inline(PersistJob& job) = 0;
    // Hand `job` to the storage thread. Its completion must come back, on this thread and in
    // submission order, as ReadyPipeline::persisted(status), and never from inside this
    // call (the pipeline sends the Ready's messages after handing the job over).
    virtual void persist_on_worker(PersistJob job) = 0;

    // Whether client replies or commit events wait to be written; write them now.
    virtual bool clients_have_output() = 0;
    virtual void flush_clients() = 0;

    // Committed entries, in order, each durable locally and on a quorum.
    virtual void deliver(const std::vector<raft::Entry>& committed) = 0;
    virtual void read_states(const std::vector<raft::ReadState>& rs) = 0;
    // A snapshot from the leader is durable and installed (the log now starts after it);
    // reported before any delivery that follows it.
    virtual void snapshot_installed(const raft::SnapshotMeta& meta) = 0;
    // The Ready's soft state (role or leader) changed; the term changed.
    virtual void role_changed(const raft::SoftState& ss) = 0;
    virtual void term_changed(raft::Term term) = 0;
    // The Node was advanced past a Ready (everything in it handled).
    virtual void advanced(const Advanced& a) = 0;
    // A leader's own entries up to `last` are durable and now count toward its quorum.
    virtual void own_entries_durable(raft::EntryId last) { (void)last; }

    // A job failed: stop everything. No other action follows.
    virtual void fatal(const std::string& why) = 0;
    // After stop(): no job of this pipeline is outstanding any more. No other action follows.
    virtual void drained() = 0;
};

// One line for traces: "entries 3..5 hs{t2 v1 c4}", "snapshot 2/10 chunks 1 hs{...}",
// "hs{t2 v1 c4}", "empty".
std::string describe(const PersistJob& job);

class ReadyPipeline {
  public:
    // `durable` is the hard state the store holds now; `delivered` the index up to which
    // committed entries count as delivered (raft::Config::applied). Both must outlive this.
    ReadyPipeline(raft::Node& node, PipelineActions& actions, const raft::HardState& durable,
                  raft::Index delivered);
    ReadyPipeline(const ReadyPipeline&) = delete;
    ReadyPipeline& operator=(const ReadyPipeline&) = delete;

    // Raft was fed (a proposal, a peer message, a read): take and handle every Ready it has,
    // unless one waits for the storage thread (what accumulates meanwhile is the next batch).
    void process();
    // One tick of logical time: Node::tick(), then process(); the lazy commit index is
    // written when nothing else is in flight.
    void tick();
    // The oldest job handed to persist_on_worker finished with `st`.
    void persisted(Status st);
    // Stop taking Readies; queued leader entries are still written. drained() follows once
    // no job is outstanding (at once when none is).
    void stop();
    // After drained(): a commit-only hard state never written, to write once the storage
    // thread stopped (empty after fatal()).
    std::optional<raft::HardState> take_unwritten_hard_state();

    bool stopping() const { return stopping_; }
    // fatal() or drained() was called.
    bool stopped() const { return stopped_; }
    // The highest committed index handed to deliver().
    raft::Index delivered() const { return delivered_; }
    // Jobs handed to the storage thread and not yet reported by persisted().
    size_t jobs_on_worker() const { return jobs_.size(); }
    const PipelineStats& stats() const { return stats_; }

  private:
    // What a job on the storage thread finishes when persisted() reports it.
    struct Submitted {
        enum class Kind { kReady, kLeaderEntries, kCommitIndex } kind;
        raft::EntryId last;  // kLeaderEntries: report to Node::entries_persisted
    };

    void handle(raft::Ready rd);
    // Steps 3-5 of the contract for `rd`; with entries_durable false its entries (a
    // leader's own) are still being written, and the last of them is returned.
    raft::EntryId finish_ready(raft::Ready& rd, bool entries_durable);
    void attach_hard_state(PersistJob& job);
    bool try_persist_inline(PersistJob& job);
    void submit(PersistJob job, Submitted what);
    void queue_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last);
    void flush_leader_entries();
    void on_leader_entries_persisted(raft::EntryId last);
    void flush_commit_index();
    void send(std::vector<raft::Message>& msgs);
    void deliver(raft::Ready& rd);
    void flush_clients();
    // Stops the pipeline and reports `why` (NodeHost logs it as "{why}; stopping").
    void fatal(const std::string& why);
    void maybe_drained();

    raft::Node& node_;
    PipelineActions& actions_;

    // The hard state last handed to the store; the newest one any Ready carried; whether
    // that one is newer than the written one in its commit index only, and unwritten (lazy).
    raft::HardState written_hs_;
    raft::HardState newest_hs_;
    bool lazy_ = false;
    bool commit_due_ = true;  // a tick passed since the hard state was last written
    // A Ready's job (or a commit-index flush) is on the storage thread: no Ready is taken
    // until it is durable. The rest of that Ready waits in pending_.
    bool persisting_ = false;
    std::optional<raft::Ready> pending_;
    std::deque<Submitted> jobs_;  // on the storage thread, oldest first
    // Leader jobs on the storage thread, and the entries handed out meanwhile that form the
    // next one (with the last of them, to report to raft when durable).
    int leader_jobs_ = 0;
    std::vector<raft::Entry> async_next_;
    raft::EntryId async_next_last_;
    bool in_process_ = false;
    bool stopping_ = false;
    bool stopped_ = false;
    bool failed_ = false;
    raft::Index delivered_ = 0;
    bool conf_may_change_ = false;  // the Ready being finished delivered a config entry
    raft::Term logged_term_ = 0;
    PipelineStats stats_;
};

}  // namespace raftd::daemon
