// The pending-request table: see pending.h.
#include "daemon/pending.h"

#include "raft/enum_name.h"

namespace raftd::daemon {

namespace {

std::string entry_str(raft::EntryId id) {
    return "index " + std::to_string(id.index) + " term " + std::to_string(id.term);
}

// What the committed entry `c` says about the request `ours` at or below its index (the
// rules of pending.h).
Resolution decide(raft::EntryId ours, raft::EntryId c, bool by_snapshot) {
    if (ours.term == c.term) return {Fate::kCommitted, ours, "", false};
    const std::string what = by_snapshot ? "a snapshot through " + entry_str(c) + " was installed"
                                         : entry_str(c) + " committed";
    if (ours.index == c.index || ours.term > c.term)
        return {Fate::kNotCommitted, ours,
                what + ": a different entry holds index " + std::to_string(ours.index) +
                    ", so the one proposed there in term " + std::to_string(ours.term) +
                    " will never commit",
                false};
    return {Fate::kUnknown, ours,
            what + " over index " + std::to_string(ours.index) +
                ": the entry proposed there in term " + std::to_string(ours.term) +
                " may have committed",
            false};
}

}  // namespace

constexpr EnumName<Fate> kFateNames[] = {
    {Fate::kCommitted, "committed"},
    {Fate::kNotCommitted, "not committed"},
    {Fate::kUnknown, "unknown"},
};

std::string_view fate_name(Fate f) {
    return enum_name(f, kFateNames, "unknown");
}

void PendingTable::add(raft::EntryId id, Resolve resolve, uint64_t deadline, std::string late) {
    items_.emplace(Key{id.index, id.term}, Item{std::move(resolve), deadline, std::move(late)});
    note_deadline(deadline);
}

void PendingTable::note_deadline(uint64_t deadline) {
    if (deadline != 0 && (next_deadline_ == 0 || deadline < next_deadline_))
        next_deadline_ = deadline;
}

void PendingTable::committed(raft::EntryId e) {
    decide_through(e, /*by_snapshot=*/false);
}

void PendingTable::snapshot_installed(raft::EntryId snap) {
    decide_through(snap, /*by_snapshot=*/true);
}

void PendingTable::decide_through(raft::EntryId e, bool by_snapshot) {
    // One at a time, each out of the table before its callback runs (which may add more:
    // those wait for their own entries, all above e.index).
    while (!items_.empty() && items_.begin()->first.first <= e.index) {
        auto node = items_.extract(items_.begin());
        const raft::EntryId ours{node.key().first, node.key().second};
        // Below e.index only after a skip: the commit stream delivers every index otherwise.
        Resolution r = decide(ours, e, by_snapshot || ours.index < e.index);
        if (node.mapped().resolve) node.mapped().resolve(r);
    }
}

void PendingTable::orphan(raft::Term term, uint64_t deadline, const std::string& late) {
    for (auto& [key, item] : items_) {
        if (key.second < term && item.deadline == 0) {
            item.deadline = deadline;
            item.late = late;
            note_deadline(deadline);
        }
    }
}

void PendingTable::expire(uint64_t now) {
    // Called often (every 100 ms) and usually with nothing due: skip the walk until the
    // earliest deadline set (it may belong to a request answered since: then walk early).
    if (next_deadline_ == 0 || now < next_deadline_) return;
    next_deadline_ = 0;
    std::vector<std::pair<Item, Resolution>> out;
    for (auto it = items_.begin(); it != items_.end();) {
        if (it->second.deadline != 0 && it->second.deadline <= now) {
            const raft::EntryId id{it->first.first, it->first.second};
            std::string why = it->second.late;
            out.emplace_back(std::move(it->second),
                             Resolution{Fate::kUnknown, id, std::move(why), false});
            it = items_.erase(it);
        } else {
            note_deadline(it->second.deadline);
            ++it;
        }
    }
    answer(out);
}

void PendingTable::fail_all(const std::string& why) {
    std::vector<std::pair<Item, Resolution>> out;
    for (auto& [key, item] : items_)
        out.emplace_back(std::move(item),
                         Resolution{Fate::kUnknown, {key.first, key.second}, why, true});
    items_.clear();
    answer(out);
}

void PendingTable::answer(std::vector<std::pair<Item, Resolution>>& out) {
    for (auto& [item, res] : out)
        if (item.resolve) item.resolve(res);
}

ipc::Outcome<ipc::ProposeReply> proposal_reply(const Resolution& r) {
    switch (r.fate) {
        case Fate::kCommitted:
            return ipc::ProposeReply{r.id.index, r.id.term};
        case Fate::kNotCommitted:
            return ipc::Error{ipc::ErrorCode::kUnavailable, r.why, std::nullopt};
        case Fate::kUnknown:
            break;
    }
    // SHUTTING_DOWN without "not appended" in its message means INDETERMINATE to clients
    // (docs/protocol.md 4.2), and tells them to go to another node.
    return ipc::Error{r.stopping ? ipc::ErrorCode::kShuttingDown : ipc::ErrorCode::kIndeterminate,
                      r.why, std::nullopt};
}

}  // namespace raftd::daemon
