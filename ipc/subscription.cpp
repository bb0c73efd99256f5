// Subscriptions (see subscription.h): start, the round-robin pump and one read per stream.
#include "ipc/subscription.h"

#include <algorithm>
#include <string>
#include <vector>

namespace raftd::ipc {

namespace {

Error internal(std::string msg) {
    return Error{ErrorCode::kInternal, std::move(msg), std::nullopt};
}

}  // namespace

void Subscriptions::start(uint64_t id, std::optional<raft::Index> from) {
    Stream s;
    s.id = id;
    s.next = from ? *from : backend_.commit_index() + 1;
    subs_.emplace(id, s);
}

bool Subscriptions::stop(uint64_t id) {
    return subs_.erase(id) != 0;
}

void Subscriptions::end(OutBuffer& out, uint64_t id, const Error& why) {
    if (subs_.erase(id)) encode_end_event(out, id, why);
}

void Subscriptions::end_all(OutBuffer& out, const Error& why) {
    std::vector<uint64_t> ids;
    for (auto& [id, s] : subs_)
        ids.push_back(id);
    for (uint64_t id : ids)
        end(out, id, why);
}

bool Subscriptions::pump(OutBuffer& out, uint64_t in_flight) {
    if (pumping_ || subs_.empty()) return false;
    pumping_ = true;  // a backend read never re-enters, but be safe against recursion
    const size_t before = out.size();
    auto queued = [&] { return out.size() + in_flight; };
    // Round-robin: each pass gives every stream one read while there is room.
    bool progress = true;
    while (progress && queued() < limits_.output_bytes) {
        progress = false;
        std::vector<uint64_t> ids;
        for (auto& [id, s] : subs_)
            ids.push_back(id);
        for (uint64_t id : ids) {
            if (queued() >= limits_.output_bytes) break;
            auto it = subs_.find(id);
            if (it == subs_.end()) continue;
            if (pump_one(it->second, out, limits_.output_bytes - queued())) progress = true;
        }
    }
    pumping_ = false;
    return out.size() != before;
}

bool Subscriptions::pump_one(Stream& s, OutBuffer& out, uint64_t room) {
    Backend& b = backend_;
    if (!s.in_snapshot) {
        if (s.next > b.commit_index()) return false;
        auto r = b.read_entries(s.next, std::max<uint64_t>(room, 1));
        if (!r) {
            if (r.status().code() == Code::kCompacted) {
                s.in_snapshot = true;
                s.snap = b.latest_snapshot();
                s.snap_offset = 0;
                if (s.snap.index + 1 < s.next) {
                    // Nothing to stream would connect the snapshot to `next`.
                    end(out, s.id, internal("log compacted beyond the snapshot"));
                    return false;
                }
                return true;
            }
            if (r.status().code() == Code::kNotFound) return false;  // not committed yet
            end(out, s.id, internal(r.status().to_string()));
            return false;
        }
        if (r->empty()) return false;
        for (const StreamEntry& e : *r) {
            if (e.entry.index != s.next) {
                end(out, s.id,
                    internal("log returned index " + std::to_string(e.entry.index) + ", expected " +
                             std::to_string(s.next)));
                return false;
            }
            if (e.entry.type == raft::EntryType::kConfig && !e.config) {
                end(out, s.id, internal("config entry without its configuration"));
                return false;
            }
            encode_entry_event(out, s.id, e.entry, e.config ? &*e.config : nullptr);
            ++s.next;
        }
        return true;
    }
    // Streaming a snapshot.
    uint64_t chunk = std::max<uint64_t>(1, std::min<uint64_t>(room, limits_.snapshot_chunk_bytes));
    auto r = b.read_snapshot(s.snap.index, s.snap_offset, chunk);
    if (!r) {
        if (r.status().code() == Code::kNotFound) {
            // A newer snapshot replaced it: start over with that one (offset 0 tells the
            // client to drop the partial one).
            SnapshotInfo latest = b.latest_snapshot();
            if (latest.index == s.snap.index || latest.index == 0) {
                end(out, s.id, internal(r.status().to_string()));
                return false;
            }
            s.snap = latest;
            s.snap_offset = 0;
            return true;
        }
        end(out, s.id, internal(r.status().to_string()));
        return false;
    }
    SnapshotChunk c;
    c.index = s.snap.index;
    c.term = s.snap.term;
    c.offset = s.snap_offset;
    c.done = r->done;
    c.membership = s.snap.membership;
    s.snap_offset += r->data.size();
    c.data = raft::Payload(std::move(r->data));
    encode_snapshot_event(out, s.id, c);
    if (c.done) {
        s.in_snapshot = false;
        s.next = s.snap.index + 1;
    }
    return true;
}

}  // namespace raftd::ipc
