#include "raft/memory_storage.h"

#include <algorithm>

namespace raftd::raft {

MemoryStorage::MemoryStorage() {
    ents_.push_back(Entry{});
}

InitialState MemoryStorage::initial_state() const {
    return {hard_, snap_.conf};
}

Index MemoryStorage::first_index() const {
    return ents_[0].index + 1;
}
Index MemoryStorage::last_index() const {
    return ents_[0].index + ents_.size() - 1;
}
SnapshotMeta MemoryStorage::snapshot_meta() const {
    return snap_;
}

Result<std::vector<Entry>> MemoryStorage::entries(Index lo, Index hi, uint64_t max_bytes) const {
    if (lo < first_index())
        return Status::compacted("entries below " + std::to_string(first_index()));
    if (hi > last_index() + 1)
        return Status::not_found("entries beyond " + std::to_string(last_index()));
    std::vector<Entry> out;
    uint64_t bytes = 0;
    for (Index i = lo; i < hi; ++i) {
        const Entry& e = ents_[i - ents_[0].index];
        if (!out.empty() && bytes + e.byte_size() > max_bytes) break;
        bytes += e.byte_size();
        out.push_back(e);
    }
    return out;
}

Result<Term> MemoryStorage::term(Index i) const {
    Index base = ents_[0].index;
    if (i < base) return Status::compacted("term below " + std::to_string(base));
    if (i > last_index()) return Status::not_found("term beyond " + std::to_string(last_index()));
    return ents_[i - base].term;
}

Result<SnapshotBytes> MemoryStorage::read_snapshot(Index index, uint64_t offset,
                                                   uint64_t max_bytes) const {
    if (index != snap_.index || index == 0) return Status::not_found("no snapshot at that index");
    if (offset > snap_data_.size()) return Status::invalid_argument("offset past the snapshot");
    SnapshotBytes out;
    out.data = snap_data_.substr(offset, max_bytes);
    out.done = offset + out.data.size() == snap_data_.size();
    return out;
}

Status MemoryStorage::append(const std::vector<Entry>& ents) {
    if (ents.empty()) return Status::ok();
    for (size_t k = 1; k < ents.size(); ++k) {
        if (ents[k].index != ents[k - 1].index + 1)
            return Status::invalid_argument("entries not contiguous");
    }
    Index base = ents_[0].index;
    if (ents.back().index <= base) return Status::ok();  // all covered by the snapshot
    if (ents.front().index > last_index() + 1)
        return Status::invalid_argument("append leaves a gap");
    size_t skip = ents.front().index <= base ? base + 1 - ents.front().index : 0;
    Index first = ents[skip].index;
    ents_.resize(first - base);
    ents_.insert(ents_.end(), ents.begin() + static_cast<std::ptrdiff_t>(skip), ents.end());
    return Status::ok();
}

Status MemoryStorage::apply_snapshot(const SnapshotMeta& meta, std::string data) {
    if (meta.index < snap_.index)
        return Status::invalid_argument("snapshot older than the current one");
    snap_ = meta;
    snap_data_ = std::move(data);
    ents_.clear();
    ents_.push_back(Entry{meta.index, meta.term, EntryType::kNoop, {}});
    return Status::ok();
}

Status MemoryStorage::create_snapshot(const SnapshotMeta& meta, std::string data) {
    if (meta.index < snap_.index)
        return Status::invalid_argument("snapshot older than the current one");
    if (meta.index > last_index()) return Status::invalid_argument("snapshot beyond the log");
    snap_ = meta;
    snap_data_ = std::move(data);
    return Status::ok();
}

Status MemoryStorage::compact(Index i) {
    Index base = ents_[0].index;
    if (i <= base) return Status::ok();
    if (i > snap_.index) return Status::invalid_argument("compaction beyond the snapshot");
    Term t = ents_[i - base].term;
    ents_.erase(ents_.begin(), ents_.begin() + static_cast<std::ptrdiff_t>(i - base));
    ents_[0] = Entry{i, t, EntryType::kNoop, {}};
    return Status::ok();
}

}  // namespace raftd::raft
