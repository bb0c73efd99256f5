// StorageWorker: the thread that makes Ready batches (and application snapshot uploads)
// durable, so the loop keeps receiving, and raft keeps accumulating the next batch, while a
// batch is written and fsynced.
//
// Owns: one std::thread, a FIFO of tasks, and the uv::Async that reports completions back
// to the loop. Tasks run one at a time in submission order; their completions run on the
// loop thread in the same order.
// Never: touch raft, the transport or anything else of the loop thread from a task; run a
// task after stop().
//
// Thread rules: submit()/stop() on the loop thread; `work` on the worker thread; `done` on
// the loop thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "ipc/uv.h"
#include "raft/status.h"

namespace raftd::daemon {

class StorageWorker {
  public:
    StorageWorker() = default;
    ~StorageWorker() { stop(); }
    StorageWorker(const StorageWorker&) = delete;
    StorageWorker& operator=(const StorageWorker&) = delete;

    Status start(uv_loop_t* loop);
    void submit(std::function<Status()> work, std::function<void(Status)> done);
    // Finishes the task that is running (its completion is not reported), drops the
    // rest, and joins.
    void stop();
    // Tasks submitted and not yet completed on the loop.
    size_t outstanding() const { return outstanding_; }

  private:
    struct Task {
        std::function<Status()> work;
        std::function<void(Status)> done;
        Status result;
    };
    void main();
    void deliver();

    ipc::uv::Async async_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> todo_;  // guarded by mu_
    std::deque<Task> done_;  // guarded by mu_
    bool quit_ = false;      // guarded by mu_
    size_t outstanding_ = 0;  // loop thread
};

}  // namespace raftd::daemon
