#include "raft/raft_log.h"

#include <algorithm>
#include <string>

namespace raftd::raft {

RaftLog::RaftLog(const Storage& storage) : storage_(storage) {
    offset_ = storage_.last_index() + 1;
    handed_out_ = offset_ - 1;
    committed_ = storage_.first_index() - 1;
    applied_ = committed_;
}

Index RaftLog::first_index() const {
    if (snapshot_) return snapshot_->index + 1;
    return storage_.first_index();
}

// The unstable tail is authoritative from offset_ on (it may be about to truncate entries the
// storage still holds), so the last index is always derived from it.
Index RaftLog::last_index() const {
    return offset_ + unstable_.size() - 1;
}

Term RaftLog::last_term() const {
    return term_or_zero(last_index());
}

std::optional<Term> RaftLog::unstable_term(Index i) const {
    if (i >= offset_ && i - offset_ < unstable_.size()) return unstable_[i - offset_].term;
    return std::nullopt;
}

Result<Term> RaftLog::term(Index i) const {
    if (snapshot_) {
        if (i == snapshot_->index) return snapshot_->term;
        if (i < snapshot_->index) return Status::compacted("index " + std::to_string(i));
    }
    if (auto t = unstable_term(i)) return *t;
    if (i > last_index()) return Status::not_found("index " + std::to_string(i) + " beyond log");
    if (snapshot_) return Status::not_found("index " + std::to_string(i));
    if (i + 1 < storage_.first_index()) return Status::compacted("index " + std::to_string(i));
    return storage_.term(i);
}

Term RaftLog::term_or_zero(Index i) const {
    auto t = term(i);
    return t ? *t : 0;
}

bool RaftLog::match_term(Index i, Term t) const {
    auto ours = term(i);
    return ours && *ours == t;
}

Result<std::vector<Entry>> RaftLog::slice(Index lo, Index hi, uint64_t max_bytes) const {
    if (lo < first_index()) return Status::compacted("index " + std::to_string(lo));
    if (hi > last_index() + 1) return Status::not_found("index " + std::to_string(hi - 1));
    std::vector<Entry> out;
    if (lo >= hi) return out;
    uint64_t bytes = 0;
    if (lo < offset_) {
        Index stop = std::min(hi, offset_);
        auto r = storage_.entries(lo, stop, max_bytes == 0 ? UINT64_MAX : max_bytes);
        if (!r) return r.status();
        out = std::move(r).value();
        if (out.empty()) return Status::internal("storage returned no entries");
        for (const auto& e : out)
            bytes += e.byte_size();
        if (out.size() < stop - lo) return out;  // stopped by the byte limit
    }
    for (Index i = std::max(lo, offset_); i < hi; ++i) {
        const Entry& e = unstable_[i - offset_];
        if (!out.empty() && max_bytes != 0 && bytes + e.byte_size() > max_bytes) break;
        bytes += e.byte_size();
        out.push_back(e);
    }
    return out;
}

bool RaftLog::is_up_to_date(Index last, Term t) const {
    Term ours = last_term();
    return t > ours || (t == ours && last >= last_index());
}

std::optional<Index> RaftLog::maybe_append(Index prev, Term prev_term, Index commit,
                                           const std::vector<Entry>& ents) {
    if (!match_term(prev, prev_term)) return std::nullopt;
    Index last_new = prev + ents.size();
    size_t first_conflict = ents.size();
    for (size_t k = 0; k < ents.size(); ++k) {
        if (!match_term(ents[k].index, ents[k].term)) {
            first_conflict = k;
            break;
        }
    }
    if (first_conflict < ents.size()) {
        // A committed entry never changes; a leader asking for that is broken or forged.
        if (ents[first_conflict].index <= committed_) return std::nullopt;
        truncate_and_append(std::vector<Entry>(
            ents.begin() + static_cast<std::ptrdiff_t>(first_conflict), ents.end()));
    }
    commit_to(std::min(commit, last_new));
    return last_new;
}

void RaftLog::append(std::vector<Entry> ents) {
    if (ents.empty()) return;
    truncate_and_append(ents);
}

void RaftLog::truncate_and_append(const std::vector<Entry>& ents) {
    Index first = ents.front().index;
    if (first == offset_ + unstable_.size()) {
        unstable_.insert(unstable_.end(), ents.begin(), ents.end());
        return;
    }
    // Some handed-out entries are replaced: the next Ready must carry the new suffix again.
    handed_out_ = std::min(handed_out_, first - 1);
    if (first <= offset_) {
        offset_ = first;
        unstable_ = ents;
        return;
    }
    unstable_.resize(first - offset_);
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
}

std::pair<Index, Term> RaftLog::find_conflict_by_term(Index i, Term t) const {
    i = std::min(i, last_index());
    for (;; --i) {
        auto ours = term(i);
        if (!ours) return {i, 0};
        if (*ours <= t || i == 0) return {i, *ours};
    }
}

void RaftLog::commit_to(Index i) {
    if (i > committed_ && i <= last_index()) committed_ = i;
}

void RaftLog::restore(const SnapshotMeta& meta) {
    snapshot_ = meta;
    snapshot_handed_out_ = false;
    unstable_.clear();
    offset_ = meta.index + 1;
    handed_out_ = meta.index;
    committed_ = meta.index;
}

std::vector<Entry> RaftLog::next_unstable() const {
    Index from = std::max(handed_out_ + 1, offset_);
    if (from > last_index()) return {};
    return std::vector<Entry>(unstable_.begin() + static_cast<std::ptrdiff_t>(from - offset_),
                              unstable_.end());
}

bool RaftLog::has_next_unstable() const {
    return std::max(handed_out_ + 1, offset_) <= last_index();
}

std::optional<SnapshotMeta> RaftLog::next_snapshot() const {
    if (snapshot_ && !snapshot_handed_out_) return snapshot_;
    return std::nullopt;
}

void RaftLog::mark_handed_out(Index last_entry, bool snapshot) {
    handed_out_ = std::max(handed_out_, last_entry);
    if (snapshot) snapshot_handed_out_ = true;
}

bool RaftLog::has_next_committed() const {
    if (snapshot_) return false;
    return std::min(committed_, durable_last()) > applied_;
}

std::vector<Entry> RaftLog::next_committed(uint64_t max_bytes) const {
    if (!has_next_committed()) return {};
    Index hi = std::min(committed_, durable_last()) + 1;
    auto r = slice(applied_ + 1, hi, max_bytes);
    if (!r) return {};
    return std::move(r).value();
}

void RaftLog::stable_to(Index i, Term t) {
    auto ours = unstable_term(i);
    if (!ours || *ours != t) return;  // replaced meanwhile: those entries stay unstable
    unstable_.erase(unstable_.begin(),
                    unstable_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
    offset_ = i + 1;
}

void RaftLog::stable_snapshot_to(Index i) {
    if (snapshot_ && snapshot_->index == i) {
        snapshot_.reset();
        snapshot_handed_out_ = false;
    }
}

}  // namespace raftd::raft
