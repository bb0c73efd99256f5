// The storage thread: see storage_worker.h.
#include "daemon/storage_worker.h"

namespace raftd::daemon {

Status StorageWorker::start(uv_loop_t* loop) {
    Status st = async_.init(loop, [this] {
        std::optional<Status> r;
        {
            std::lock_guard g(mu_);
            r.swap(result_);
        }
        if (r) done_(std::move(*r));
    });
    if (!st) return st;
    thread_ = std::thread([this] { main(); });
    return Status::ok();
}

void StorageWorker::submit(PersistJob job) {
    {
        std::lock_guard g(mu_);
        job_.emplace(std::move(job));
    }
    cv_.notify_one();
}

void StorageWorker::stop() {
    {
        std::lock_guard g(mu_);
        quit_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    async_.close();
}

void StorageWorker::main() {
    for (;;) {
        PersistJob job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return quit_ || job_.has_value(); });
            if (!job_) return;  // quit with nothing in flight
            job = std::move(*job_);
        }
        Status st = store_.persist(job);
        {
            std::lock_guard g(mu_);
            job_.reset();
            result_ = std::move(st);
            if (quit_) return;
        }
        // Payload refcounts drop here, off the loop; then the loop is woken.
        job = PersistJob{};
        (void)async_.send();
    }
}

}  // namespace raftd::daemon
