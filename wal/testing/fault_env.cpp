// FaultEnv's File wrapper: every call asks the hook first, then forwards.
#include "wal/testing/fault_env.h"

namespace raftd::wal {

namespace {

class FaultFile final : public File {
  public:
    FaultFile(const FaultEnv* env, std::unique_ptr<File> base)
        : File(base->path()), env_(env), base_(std::move(base)) {}

    Result<size_t> pwritev(uint64_t offset, const iovec* iov, int iovcnt) override {
        if (int e = env_->check("write", path())) return errno_status("write", path(), e);
        return base_->pwritev(offset, iov, iovcnt);
    }
    Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const override {
        if (int e = env_->check("read", path())) return errno_status("read", path(), e);
        return base_->read_at(offset, buf, n);
    }
    Status datasync() override {
        if (int e = env_->check("datasync", path())) return errno_status("fdatasync", path(), e);
        return base_->datasync();
    }
    Status sync() override {
        if (int e = env_->check("sync", path())) return errno_status("fsync", path(), e);
        return base_->sync();
    }
    Status truncate(uint64_t size) override {
        if (int e = env_->check("truncate", path())) return errno_status("ftruncate", path(), e);
        return base_->truncate(size);
    }
    Status allocate(uint64_t offset, uint64_t len) override {
        if (int e = env_->check("allocate", path())) return errno_status("fallocate", path(), e);
        return base_->allocate(offset, len);
    }
    Result<uint64_t> size() const override { return base_->size(); }

  private:
    const FaultEnv* env_;
    std::unique_ptr<File> base_;
};

}  // namespace

Result<std::unique_ptr<File>> FaultEnv::open(const std::string& path, OpenMode mode) {
    if (int e = check("open", path)) return errno_status("open", path, e);
    auto f = base_->open(path, mode);
    if (!f) return f.status();
    return std::unique_ptr<File>(std::make_unique<FaultFile>(this, std::move(f.value())));
}

Status FaultEnv::rename(const std::string& from, const std::string& to) {
    if (int e = check("rename", from)) return errno_status("rename", from + " -> " + to, e);
    return base_->rename(from, to);
}

Status FaultEnv::remove(const std::string& path) {
    if (int e = check("remove", path)) return errno_status("unlink", path, e);
    return base_->remove(path);
}

Status FaultEnv::sync_dir(const std::string& dir) {
    if (int e = check("sync_dir", dir)) return errno_status("fsync dir", dir, e);
    return base_->sync_dir(dir);
}

Status FaultEnv::create_dirs(const std::string& dir) {
    if (int e = check("create_dirs", dir)) return errno_status("mkdir", dir, e);
    return base_->create_dirs(dir);
}

}  // namespace raftd::wal
