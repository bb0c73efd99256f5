// Snapshot uploads (docs/protocol.md, `snapshot`): the upload one connection is sending in
// chunks, and the server-wide keeper of writers whose finish() is still running.
//
// Owns: Upload: the connection's SnapshotWriter with its index and the offset the next chunk
// must have. FinishingWriters: writers handed over by their last chunk, until finish()
// completed.
// Never: accept a chunk that does not continue the upload (nothing is written then), destroy
// a writer inside its own finish() (it is destroyed at the next collect()), or let a closed
// connection cut short a finish() already started.
//
// Thread rules: loop thread only; the writers' completions run there too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "ipc/backend.h"
#include "ipc/protocol.h"
#include "raft/types.h"

namespace raftd::ipc {

// Writers whose finish() is outstanding. Their completion may run after the connection
// that uploaded them closed, or after the keeper is gone (then it only answers `done`).
class FinishingWriters {
  public:
    FinishingWriters() : state_(std::make_shared<State>()) {}
    // Calls w->finish(last, done) and keeps `w` alive until `done` ran.
    void finish(std::unique_ptr<SnapshotWriter> w, raft::Payload last, Done<raft::Index> done);
    // Destroys the writers whose finish() completed: call where none of them is on the stack.
    void collect() { state_->done.clear(); }

  private:
    struct State {
        std::map<uint64_t, std::unique_ptr<SnapshotWriter>> running;
        std::vector<std::unique_ptr<SnapshotWriter>> done;
        uint64_t next = 1;
    };
    std::shared_ptr<State> state_;
};

class Upload {
  public:
    Upload(Backend& backend, FinishingWriters& finishing)
        : backend_(backend), finishing_(finishing) {}
    ~Upload() { abort(); }
    Upload(const Upload&) = delete;
    Upload& operator=(const Upload&) = delete;

    // Takes chunk `r` into the upload: offset 0 begins a new one (abandoning any other);
    // any other offset must continue this one. Returns the error to answer instead (nothing
    // was written then). On success the caller passes r.data to write() or, when r.done,
    // to finish().
    std::optional<Error> accept(const SnapshotRequest& r);
    // The accepted chunk in the middle of the upload.
    void write(raft::Payload chunk, Done<Unit> done) {
        writer_->write(std::move(chunk), std::move(done));
    }
    // The accepted last chunk: the writer goes to FinishingWriters and the upload is over.
    void finish(raft::Payload last, Done<raft::Index> done) {
        finishing_.finish(std::move(writer_), std::move(last), std::move(done));
    }
    // An upload is in progress (its connection must not close before it ends).
    bool active() const { return writer_ != nullptr; }
    // Abandons the upload in progress, if any.
    void abort();

  private:
    Backend& backend_;
    FinishingWriters& finishing_;
    std::unique_ptr<SnapshotWriter> writer_;
    raft::Index index_ = 0;
    uint64_t offset_ = 0;  // bytes accepted so far: the next chunk's offset
};

}  // namespace raftd::ipc
