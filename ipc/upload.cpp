// Snapshot uploads (see upload.h).
#include "ipc/upload.h"

#include <string>

namespace raftd::ipc {

void FinishingWriters::finish(std::unique_ptr<SnapshotWriter> w, raft::Payload last,
                              Done<raft::Index> done) {
    const uint64_t key = state_->next++;
    SnapshotWriter* raw = w.get();
    state_->running.emplace(key, std::move(w));
    std::weak_ptr<State> weak = state_;
    auto shared_done = std::make_shared<Done<raft::Index>>(std::move(done));
    raw->finish(std::move(last),
                Done<raft::Index>([weak, key, shared_done](Outcome<raft::Index> o) {
                    (*shared_done)(std::move(o));
                    if (auto s = weak.lock()) {
                        // Not destroyed here: finish()'s caller may still be on the stack.
                        auto it = s->running.find(key);
                        if (it != s->running.end()) {
                            s->done.push_back(std::move(it->second));
                            s->running.erase(it);
                        }
                    }
                }));
}

std::optional<Error> Upload::accept(const SnapshotRequest& r) {
    if (r.offset == 0) {
        abort();
        auto w = backend_.begin_snapshot(r.index);
        if (!w) return w.error();
        writer_ = std::move(w.value());
        index_ = r.index;
        offset_ = 0;
    } else if (!writer_ || r.index != index_ || r.offset != offset_) {
        return Error{ErrorCode::kBadRequest,
                     "offset " + std::to_string(r.offset) +
                         " does not continue a snapshot upload on this connection" +
                         (writer_ ? " (expected " + std::to_string(offset_) + ")" : ""),
                     std::nullopt};
    }
    offset_ += r.data.size();
    return std::nullopt;
}

void Upload::abort() {
    if (writer_) writer_->abort(), writer_.reset();
}

}  // namespace raftd::ipc
