// FaultEnv: an Env that forwards to another one but lets a test make chosen calls fail.
//
// Owns: a hook consulted before every forwarded call; nothing else.
// Never: used by the daemon (tests and fault benchmarks only); retries anything.
//
// Thread rules: the hook is called on whatever thread makes the file call; set it before
// handing the Env out (or guard the hook's own state).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "wal/env.h"

namespace raftd::wal {

class FaultEnv final : public Env {
  public:
    // op is one of: open, write, read, datasync, sync, truncate, allocate, rename, remove,
    // sync_dir, create_dirs. Returns 0 to let the call through or an errno to fail it with.
    using Hook = std::function<int(std::string_view op, const std::string& path)>;

    explicit FaultEnv(Env* base) : base_(base) {}
    void set_hook(Hook h) { hook_ = std::move(h); }

    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status remove(const std::string& path) override;
    Status sync_dir(const std::string& dir) override;
    Status create_dirs(const std::string& dir) override;
    Result<std::vector<std::string>> list_dir(const std::string& dir) override {
        return base_->list_dir(dir);
    }
    bool exists(const std::string& path) override { return base_->exists(path); }

    // The errno the hook asks for, or 0 (used by the File wrapper).
    int check(std::string_view op, const std::string& path) const {
        return hook_ ? hook_(op, path) : 0;
    }

  private:
    Env* base_;
    Hook hook_;
};

}  // namespace raftd::wal
