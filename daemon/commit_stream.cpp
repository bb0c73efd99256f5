// The commit stream's read-ahead: see commit_stream.h.
#include "daemon/commit_stream.h"

#include <string>

#include "daemon/membership.h"
#include "raft/confchange.h"
#include "raft/confchange_codec.h"

namespace raftd::daemon {

Result<raft::ConfState> CommitReader::config_at(const raft::Entry& e) {
    auto it = conf_cache_.find(e.index);
    if (it != conf_cache_.end()) return it->second;
    // Replay config entries from the nearest known configuration before e (the snapshot's
    // at worst). Config entries are rare, and results are cached.
    raft::SnapshotMeta snap = log_.snapshot_meta();
    raft::ConfState cs = snap.conf;
    raft::Index from = snap.index + 1;
    auto below = conf_cache_.lower_bound(e.index);
    if (below != conf_cache_.begin()) {
        --below;
        if (below->first >= snap.index) {
            cs = below->second;
            from = below->first + 1;
        }
    }
    for (raft::Index i = from; i <= e.index;) {
        auto ents = log_.entries(i, e.index + 1, 1u << 20);
        if (!ents) return ents.status();
        for (const raft::Entry& x : *ents) {
            if (x.type == raft::EntryType::kConfig) {
                auto cc = raft::decode_conf_change(x.data.view());
                if (cc) {
                    auto next = raft::apply_conf_change(cs, *cc);
                    if (next) cs = std::move(next).value();  // refused: unchanged, as in raft
                }
                conf_cache_[x.index] = cs;
            }
            i = x.index + 1;
        }
    }
    return cs;
}

Result<std::vector<ipc::StreamEntry>> CommitReader::read(raft::Index from, raft::Index commit,
                                                         uint64_t max_bytes) {
    if (from > commit)
        return Status::not_found("index " + std::to_string(from) + " is not committed");
    auto ents = log_.entries(from, commit + 1, max_bytes);
    if (!ents) return ents.status();
    std::vector<ipc::StreamEntry> out;
    out.reserve(ents->size());
    for (raft::Entry& e : *ents) {
        ipc::StreamEntry se;
        if (e.type == raft::EntryType::kConfig) {
            auto cs = config_at(e);
            if (!cs) return cs.status();
            se.config = to_membership(*cs);
        }
        se.entry = std::move(e);
        out.push_back(std::move(se));
    }
    return out;
}

}  // namespace raftd::daemon
