#include "raft/progress.h"

#include <algorithm>

#include "raft/enum_name.h"

namespace raftd::raft {

void Inflights::add(Index last, uint64_t bytes) {
    q_.push_back({last, bytes});
    bytes_ += bytes;
}

void Inflights::free_le(Index i) {
    while (!q_.empty() && q_.front().last <= i) {
        bytes_ -= q_.front().bytes;
        q_.pop_front();
    }
}

void Inflights::free_first_one() {
    if (q_.empty()) return;
    bytes_ -= q_.front().bytes;
    q_.pop_front();
}

void Inflights::reset() {
    q_.clear();
    bytes_ = 0;
}

bool Inflights::full() const {
    return q_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

constexpr EnumName<ProgressState> kProgressStateNames[] = {
    {ProgressState::kProbe, "probe"},
    {ProgressState::kReplicate, "replicate"},
    {ProgressState::kSnapshot, "snapshot"},
};

std::string_view progress_state_name(ProgressState s) {
    return enum_name(s, kProgressStateNames, "unknown");
}

void Progress::become_probe() {
    // After a snapshot the follower has at least the snapshot, so probing resumes after it.
    if (state == ProgressState::kSnapshot) {
        next = std::max(match + 1, pending_snapshot + 1);
    } else {
        next = match + 1;
    }
    state = ProgressState::kProbe;
    probe_sent = false;
    pending_snapshot = 0;
    snapshot_offset = 0;
    chunk_in_flight = false;
    inflights.reset();
}

void Progress::become_replicate() {
    state = ProgressState::kReplicate;
    next = match + 1;
    probe_sent = false;
    pending_snapshot = 0;
    snapshot_offset = 0;
    chunk_in_flight = false;
    inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
    state = ProgressState::kSnapshot;
    pending_snapshot = snapshot_index;
    snapshot_offset = 0;
    chunk_in_flight = false;
    probe_sent = false;
    inflights.reset();
}

bool Progress::maybe_update(Index n) {
    bool updated = false;
    if (match < n) {
        match = n;
        updated = true;
        probe_sent = false;
    }
    next = std::max(next, n + 1);
    return updated;
}

bool Progress::maybe_decrease_to(Index rejected, Index match_hint) {
    if (state == ProgressState::kReplicate) {
        // Rejections of appends at or below match are stale (reordered or duplicated).
        if (rejected <= match) return false;
        next = match + 1;
        return true;
    }
    // Only the answer to the probe last sent (at next - 1) moves a probing follower.
    if (next == 0 || next - 1 != rejected) return false;
    next = std::max(std::min(rejected, match_hint + 1), match + 1);
    probe_sent = false;
    return true;
}

bool Progress::is_paused() const {
    switch (state) {
        case ProgressState::kProbe:
            return probe_sent;
        case ProgressState::kReplicate:
            return inflights.full();
        case ProgressState::kSnapshot:
            return true;
    }
    return true;
}

void Progress::sent_entries(Index last, size_t count, uint64_t bytes) {
    if (state == ProgressState::kReplicate) {
        if (count > 0) {
            next = last + 1;
            inflights.add(last, bytes);
        }
    } else if (state == ProgressState::kProbe) {
        probe_sent = true;
    }
}

std::string Progress::describe() const {
    std::string s = std::string(progress_state_name(state)) + " match=" + std::to_string(match) +
                    " next=" + std::to_string(next);
    if (is_learner) s += " learner";
    if (state == ProgressState::kSnapshot) {
        s += " snap=" + std::to_string(pending_snapshot) + "@" + std::to_string(snapshot_offset);
    }
    if (inflights.count() > 0) s += " inflight=" + std::to_string(inflights.count());
    if (state == ProgressState::kProbe && probe_sent) s += " paused";
    return s;
}

}  // namespace raftd::raft
