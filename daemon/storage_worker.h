// StorageWorker: the thread that makes Ready batches durable, so the loop keeps receiving
// (and raft keeps accumulating the next batch) while a batch is written and fsynced.
//
// Owns: one std::thread and at most one job in flight (raft has at most one Ready
// outstanding, so a queue would never hold more); the uv::Async that reports completion.
// Never: touch raft, the transport or anything else of the loop thread; run a job after
// stop().
//
// Thread rules: submit()/stop() on the loop thread; the completion callback runs on the loop
// thread; DurableStore::persist runs on the worker thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/durable.h"
#include "ipc/uv.h"

namespace raftd::daemon {

class StorageWorker {
  public:
    StorageWorker(DurableStore& store, std::function<void(Status)> done)
        : store_(store), done_(std::move(done)) {}
    ~StorageWorker() { stop(); }
    StorageWorker(const StorageWorker&) = delete;
    StorageWorker& operator=(const StorageWorker&) = delete;

    Status start(uv_loop_t* loop);
    // Hands one job to the thread; the previous one must have completed.
    void submit(PersistJob job);
    // Waits for a running job to finish (its completion is not reported) and joins.
    void stop();

  private:
    void main();

    DurableStore& store_;
    std::function<void(Status)> done_;
    ipc::uv::Async async_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<PersistJob> job_;  // guarded by mu_
    std::optional<Status> result_;   // guarded by mu_
    bool quit_ = false;              // guarded by mu_
};

}  // namespace raftd::daemon
