// The Ready pipeline: see ready_pipeline.h. The ordering rules of docs/raft.md ("The daemon's
// pipeline") are kept here, each beside the code that keeps it; tests/scenarios/pipeline/
// shows each of them as a trace.
#include "daemon/ready_pipeline.h"

#include <utility>

namespace raftd::daemon {

namespace {

// The hard state differs from the one last handed to the store only in its commit index:
// nothing a message depends on. Written without a storage round trip of its own (lazily),
// except that a job with entries always carries it (attach_hard_state).
bool commit_only(const raft::Ready& rd, const raft::HardState& written) {
    return rd.hard_state && !rd.snapshot && rd.snapshot_chunks.empty() &&
           rd.hard_state->term == written.term && rd.hard_state->vote == written.vote;
}

std::string describe_hs(const raft::HardState& hs) {
    return "hs{t" + std::to_string(hs.term) + " v" + std::to_string(hs.vote) + " c" +
           std::to_string(hs.commit) + "}";
}

}  // namespace

std::string describe(const PersistJob& job) {
    std::string s;
    auto add = [&s](const std::string& part) { s += (s.empty() ? "" : " ") + part; };
    if (!job.chunks.empty()) add("chunks " + std::to_string(job.chunks.size()));
    if (job.snapshot)
        add("snapshot " + std::to_string(job.snapshot->term) + "/" +
            std::to_string(job.snapshot->index));
    if (!job.entries.empty()) {
        const raft::Index first = job.entries.front().index, last = job.entries.back().index;
        add("entries " + std::to_string(first) +
            (first == last ? std::string() : ".." + std::to_string(last)));
    }
    if (job.hard_state) add(describe_hs(*job.hard_state));
    return s.empty() ? "empty" : s;
}

ReadyPipeline::ReadyPipeline(raft::Node& node, PipelineActions& actions,
                             const raft::HardState& durable, raft::Index delivered)
    : node_(node),
      actions_(actions),
      written_hs_(durable),
      newest_hs_(durable),
      delivered_(delivered) {}

// ---- events -------------------------------------------------------------------------------

void ReadyPipeline::process() {
    // One Ready at a time on the storage thread: while one is written, new steps and
    // proposals accumulate inside raft and leave as the next Ready (group commit). Actions
    // may feed the Node and call process() again: the loop below picks that up.
    if (in_process_ || persisting_ || stopping_ || stopped_) return;
    in_process_ = true;
    while (!persisting_ && !stopping_ && !stopped_ && node_.has_ready())
        handle(node_.ready());
    in_process_ = false;
}

void ReadyPipeline::tick() {
    if (stopping_ || stopped_) return;
    node_.tick();
    process();
    commit_due_ = true;
    // Idle: write the commit index the last Readies left behind (at most one tick late).
    if (lazy_ && !persisting_ && jobs_.empty() && !stopped_) flush_commit_index();
}

void ReadyPipeline::persisted(Status st) {
    if (stopped_ || jobs_.empty()) return;
    const Submitted what = jobs_.front();
    jobs_.pop_front();
    if (!st) {
        // Never retried: after a failed write or fsync the kernel may have dropped the data,
        // and carrying on would acknowledge entries that are not on disk.
        fatal("write-ahead log: " + st.to_string());
        return;
    }
    switch (what.kind) {
        case Submitted::Kind::kLeaderEntries:
            on_leader_entries_persisted(what.last);
            break;
        case Submitted::Kind::kReady: {
            persisting_ = false;
            raft::Ready rd = std::move(*pending_);
            pending_.reset();
            finish_ready(rd, /*entries_durable=*/true);
            break;
        }
        case Submitted::Kind::kCommitIndex:
            persisting_ = false;
            break;
    }
    if (stopped_) return;
    if (stopping_) {
        maybe_drained();
        return;
    }
    process();
}

void ReadyPipeline::stop() {
    if (stopping_ || stopped_) return;
    stopping_ = true;
    // Leader entries handed out already are written: followers may have them, and a
    // durable copy here is what lets the next leader count on this node.
    flush_leader_entries();
    maybe_drained();
}

std::optional<raft::HardState> ReadyPipeline::take_unwritten_hard_state() {
    if (!lazy_ || failed_) return std::nullopt;
    lazy_ = false;
    written_hs_ = newest_hs_;
    return newest_hs_;
}

// ---- one Ready ----------------------------------------------------------------------------

void ReadyPipeline::handle(raft::Ready rd) {
    ++stats_.readies;
    if (rd.soft_state) actions_.role_changed(*rd.soft_state);
    if (rd.hard_state && rd.hard_state->term != logged_term_) {
        logged_term_ = rd.hard_state->term;
        actions_.term_changed(logged_term_);
    }
    // Step 1 of the contract: `messages` never depend on this Ready's writes. In particular a
    // leader's AppendEntries go out now and replicate while its own write syncs (thesis
    // 10.2.1). Step 4 moves up: raft hands out only committed entries that are durable
    // already (on a quorum and here), so their delivery, and the replies it queues, need not
    // wait for this Ready's own write. New entries go to the followers first (their fsync
    // is the longer path); a Ready without any (a commit notice) lets the clients' replies
    // go first instead. A snapshot being installed comes first, though: subscribers read
    // the entries after it from the store, so those wait for the install (finish_ready).
    const bool replicate_first = !rd.entries.empty();
    if (replicate_first) send(rd.messages);
    if (!rd.snapshot) deliver(rd);  // queues the replies; written below
    const bool lazy = commit_only(rd, written_hs_);
    const bool needs_disk = !rd.entries.empty() || rd.snapshot || !rd.snapshot_chunks.empty() ||
                            (rd.hard_state && !lazy);
    // A leader's own entries: written while it goes on replicating and committing (it counts
    // itself only once they are durable, Node::entries_persisted), so the next batch need
    // not wait for this one's sync. Anything that must be durable before a message leaves
    // (a term or vote, persisted_messages) takes the synchronous path below.
    const bool leader_async = node_.role() == raft::Role::kLeader && !rd.entries.empty() &&
                              !rd.snapshot && rd.snapshot_chunks.empty() &&
                              rd.persisted_messages.empty() && (!rd.hard_state || lazy);
    if (needs_disk && !leader_async) {
        // Leader entries still waiting were handed out by earlier Readies: they become a job
        // now, with the hard state those Readies left, before this Ready's is adopted. This
        // one's may belong to a new term whose leader replaces them, and its commit may
        // cover entries of this Ready only: written beside the old entries, a crash before
        // this Ready's job would restore them as committed.
        flush_leader_entries();
    }
    if (rd.hard_state) {
        newest_hs_ = *rd.hard_state;
        if (lazy) {
            lazy_ = true;
            ++stats_.lazy_commit_writes;
        }
    }
    if (leader_async) {
        std::vector<raft::Entry> entries = std::move(rd.entries);
        flush_clients();
        raft::EntryId last = finish_ready(rd, /*entries_durable=*/false);
        queue_leader_entries(std::move(entries), last);
        return;
    }
    if (needs_disk) {
        PersistJob job;
        job.chunks = std::move(rd.snapshot_chunks);
        job.snapshot = rd.snapshot;
        job.entries = std::move(rd.entries);
        if (!lazy) job.hard_state = rd.hard_state;
        // Replies to write (a busy leader): the storage thread syncs while the loop writes
        // them. Nothing else to do meanwhile (a follower, a quiet leader): this thread syncs
        // itself and saves the hand-off.
        if (!actions_.clients_have_output() && try_persist_inline(job)) {
            if (stopped_) return;
            if (!replicate_first) send(rd.messages);
            finish_ready(rd, /*entries_durable=*/true);
            return;
        }
        submit(std::move(job), {Submitted::Kind::kReady, {}});
        flush_clients();
        if (!replicate_first) send(rd.messages);
        pending_ = std::move(rd);  // finished by persisted()
        return;
    }
    flush_clients();
    if (!replicate_first) send(rd.messages);
    finish_ready(rd, /*entries_durable=*/true);
}

raft::EntryId ReadyPipeline::finish_ready(raft::Ready& rd, bool entries_durable) {
    // Step 3: everything this Ready asked to persist is durable now (or, for a leader's own
    // entries, nothing here depends on them). Only now may a follower acknowledge entries, a
    // voter grant its vote and a candidate ask for votes: each promises something about
    // our disk.
    send(rd.persisted_messages);
    // Step 4 for a Ready with a snapshot: the install is durable, so what follows it may be
    // delivered (subscribers read the entries after it from the store).
    if (rd.snapshot) {
        actions_.snapshot_installed(*rd.snapshot);
        deliver(rd);
        flush_clients();
    }
    const bool conf_may_change = conf_may_change_;
    conf_may_change_ = false;
    // Step 5.
    raft::EntryId last;
    if (entries_durable)
        node_.advance();
    else
        last = node_.advance_except_entries();
    actions_.advanced(Advanced{!entries_durable, conf_may_change});
    return last;
}

// ---- jobs ---------------------------------------------------------------------------------

void ReadyPipeline::attach_hard_state(PersistJob& job) {
    // THE COMMIT TRAVELS WITH THE ENTRIES (issue 13, bug 1). A job that carries entries
    // carries the newest hard state known now, never an absent or older one: DurableStore
    // makes its commit durable in the same sync as the entries. On restart membership is
    // rebuilt from the config entries up to the stored commit; a commit left behind (lazy,
    // up to a tick late) while the entries it covers are durable would restore an older
    // configuration than the one this node acted on. A job without entries writes a
    // commit-only hard state at most once per tick (commit_due_): each write costs the
    // store a syscall, and the commit can be learned again from the leader.
    if (!job.entries.empty() || job.hard_state || (lazy_ && commit_due_)) {
        job.hard_state = newest_hs_;
        written_hs_ = newest_hs_;
        lazy_ = false;
        commit_due_ = false;
    }
    ++stats_.persist_jobs;
    stats_.persisted_entries += job.entries.size();
}

bool ReadyPipeline::try_persist_inline(PersistJob& job) {
    // Only when nothing of the store runs or waits on the storage thread: the store is used
    // by one thread at a time, and jobs reach it in the order they were built (a leader
    // job waiting in async_next_ implies one in jobs_).
    if (!jobs_.empty() || !actions_.storage_idle()) return false;
    attach_hard_state(job);
    ++stats_.inline_jobs;
    if (Status st = actions_.persist_inline(job); !st) fatal("write-ahead log: " + st.to_string());
    return true;
}

void ReadyPipeline::submit(PersistJob job, Submitted what) {
    if (what.kind != Submitted::Kind::kLeaderEntries) {
        // Leader entries still waiting go first: the storage thread writes in submission
        // order, and raft's log must reach the store in index order.
        flush_leader_entries();
        persisting_ = true;
    }
    attach_hard_state(job);
    jobs_.push_back(what);
    actions_.persist_on_worker(std::move(job));
}

void ReadyPipeline::queue_leader_entries(std::vector<raft::Entry> entries, raft::EntryId last) {
    if (async_next_.empty()) {
        async_next_ = std::move(entries);
    } else {
        for (auto& e : entries)
            async_next_.push_back(std::move(e));
    }
    async_next_last_ = last;
    // One leader job syncing at a time: what the loop hands out meanwhile becomes the next.
    if (leader_jobs_ == 0) flush_leader_entries();
}

void ReadyPipeline::flush_leader_entries() {
    if (async_next_.empty()) return;
    PersistJob job;
    job.entries = std::move(async_next_);
    async_next_.clear();
    ++stats_.leader_async_jobs;
    ++leader_jobs_;
    submit(std::move(job), {Submitted::Kind::kLeaderEntries, async_next_last_});
}

void ReadyPipeline::on_leader_entries_persisted(raft::EntryId last) {
    --leader_jobs_;
    node_.entries_persisted(last);  // the leader may now count itself: commit may advance
    actions_.own_entries_durable(last);
    flush_leader_entries();
}

void ReadyPipeline::flush_commit_index() {
    // Through the job order like any batch, so no Ready is handed out while it runs.
    PersistJob job;
    if (try_persist_inline(job)) return;
    submit(std::move(job), {Submitted::Kind::kCommitIndex, {}});
}

// ---- actions ------------------------------------------------------------------------------

void ReadyPipeline::send(std::vector<raft::Message>& msgs) {
    if (!msgs.empty()) actions_.send(msgs);
}

void ReadyPipeline::deliver(raft::Ready& rd) {
    conf_may_change_ = rd.snapshot.has_value();
    if (!rd.committed_entries.empty()) {
        delivered_ = rd.committed_entries.back().index;
        stats_.committed_entries += rd.committed_entries.size();
        for (const auto& e : rd.committed_entries)
            conf_may_change_ |= e.type == raft::EntryType::kConfig;
        actions_.deliver(rd.committed_entries);
    }
    if (!rd.read_states.empty()) actions_.read_states(rd.read_states);
}

void ReadyPipeline::flush_clients() {
    if (actions_.clients_have_output()) actions_.flush_clients();
}

void ReadyPipeline::fatal(const std::string& why) {
    stopped_ = true;
    failed_ = true;
    actions_.fatal(why);
}

void ReadyPipeline::maybe_drained() {
    if (!stopping_ || stopped_ || !jobs_.empty()) return;
    stopped_ = true;
    actions_.drained();
}

}  // namespace raftd::daemon
