// ServerThread: a loop thread running an ipc::Server over a FakeBackend, listening on a
// socket in a fresh temporary directory, for tests that talk to it with blocking clients.
//
// Owns: the thread, its loop, the backend, the server and the temporary directory.
// Never: touch the backend or server from the test thread: call() runs a function on the
// loop thread and waits for it.
#pragma once

#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ipc/server.h"
#include "ipc/testing/fake_backend.h"
#include "ipc/uv.h"

namespace raftd::ipc::testing {

class ServerThread {
  public:
    explicit ServerThread(ServerOptions opts = {}) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "raftd-ipc-XXXXXX").string();
        dir_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
        path_ = dir_ + "/raftd.sock";
        std::mutex m;
        std::condition_variable cv;
        bool ready = false;
        thread_ = std::thread([&, opts] {
            loop_ = std::make_unique<uv::Loop>();
            backend_ = std::make_unique<FakeBackend>();
            server_ = std::make_unique<Server>(*loop_, *backend_, opts);
            backend_->server = server_.get();
            (void)async_.init(*loop_, [this] { drain(); });
            listen_status_ = server_->listen(path_, 0600, "");
            {
                // Notified under the lock: once `ready` is seen the constructor returns and
                // destroys `cv`, so nothing may touch it after the unlock.
                std::lock_guard<std::mutex> g(m);
                ready = true;
                cv.notify_all();
            }
            loop_->run();
            server_.reset();
            backend_.reset();
            loop_close_ = loop_->close();
            loop_.reset();
        });
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return ready; });
    }
    ~ServerThread() {
        call([this] {
            server_->close();
            async_.close();
        });
        thread_.join();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    const std::string& path() const { return path_; }
    const std::string& dir() const { return dir_; }
    const Status& listen_status() const { return listen_status_; }
    // Valid after destruction only through this copy; checked by tests that care.
    const Status& loop_close_status() const { return loop_close_; }

    // Runs fn(backend, server) on the loop thread and waits.
    void call(std::function<void()> fn) {
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        {
            std::lock_guard<std::mutex> g(mu_);
            queue_.push_back([&] {
                fn();
                std::lock_guard<std::mutex> g2(m);
                done = true;
                cv.notify_all();
            });
        }
        (void)async_.send();
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return done; });
    }
    template <typename F>
    auto with(F f) {
        decltype(f(std::declval<FakeBackend&>(), std::declval<Server&>())) r{};
        call([&] { r = f(*backend_, *server_); });
        return r;
    }
    void run(std::function<void(FakeBackend&, Server&)> f) {
        call([&] { f(*backend_, *server_); });
    }

  private:
    void drain() {
        std::vector<std::function<void()>> q;
        {
            std::lock_guard<std::mutex> g(mu_);
            q.swap(queue_);
        }
        for (auto& f : q)
            f();
    }

    std::string dir_, path_;
    std::thread thread_;
    std::unique_ptr<uv::Loop> loop_;
    std::unique_ptr<FakeBackend> backend_;
    std::unique_ptr<Server> server_;
    uv::Async async_;
    Status listen_status_, loop_close_;
    std::mutex mu_;
    std::vector<std::function<void()>> queue_;
};

}  // namespace raftd::ipc::testing
