// The storage thread: see storage_worker.h.
#include "daemon/storage_worker.h"

namespace raftd::daemon {

Status StorageWorker::start(uv_loop_t* loop) {
    Status st = async_.init(loop, [this] { deliver(); });
    if (!st) return st;
    thread_ = std::thread([this] { main(); });
    return Status::ok();
}

void StorageWorker::submit(std::function<Status()> work, std::function<void(Status)> done) {
    ++outstanding_;
    {
        std::lock_guard g(mu_);
        todo_.push_back(Task{std::move(work), std::move(done), Status::ok()});
    }
    cv_.notify_one();
}

void StorageWorker::deliver() {
    std::deque<Task> ready;
    {
        std::lock_guard g(mu_);
        ready.swap(done_);
    }
    for (Task& t : ready) {
        --outstanding_;
        if (t.done) t.done(std::move(t.result));
    }
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
        Task t;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return quit_ || !todo_.empty(); });
            if (quit_) return;
            t = std::move(todo_.front());
            todo_.pop_front();
        }
        t.result = t.work();
        // The job's payload references are released here, off the loop.
        t.work = nullptr;
        {
            std::lock_guard g(mu_);
            done_.push_back(std::move(t));
        }
        (void)async_.send();
    }
}

}  // namespace raftd::daemon
