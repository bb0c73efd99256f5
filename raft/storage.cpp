// The default Storage::config_entries: a bounded-memory pass over entries().
#include "raft/storage.h"

namespace raftd::raft {

namespace {
constexpr uint64_t kPageBytes = 4u << 20;
}  // namespace

Result<std::vector<Entry>> Storage::config_entries(Index lo, Index hi) const {
    std::vector<Entry> out;
    while (lo < hi) {
        auto page = entries(lo, hi, kPageBytes);
        if (!page) return page.status();
        if (page->empty()) return Status::internal("storage returned no entries");
        for (Entry& e : *page)
            if (e.type == EntryType::kConfig) out.push_back(std::move(e));
        lo = page->back().index + 1;
    }
    return out;
}

}  // namespace raftd::raft
