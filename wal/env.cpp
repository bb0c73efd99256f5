#include "wal/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

namespace raftd::wal {

Status errno_status(const char* op, const std::string& path, int err) {
    std::string m = op;
    m += ' ';
    m += path;
    m += ": ";
    m += std::strerror(err);
    return Status::io_error(std::move(m));
}

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    if (dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

std::string parent_dir(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
}

Status create_dirs_durably(Env& env, const std::string& dir) {
    // The missing ancestors, shallowest first: each new one's entry lives in its parent.
    std::vector<std::string> missing;
    for (std::string d = dir; !d.empty() && d != "/" && d != "." && !env.exists(d);
         d = parent_dir(d))
        missing.insert(missing.begin(), d);
    if (Status st = env.create_dirs(dir); !st) return st;
    std::vector<std::string> synced;
    auto sync_parent = [&](const std::string& d) -> Status {
        std::string parent = parent_dir(d);
        for (const auto& s : synced)
            if (s == parent) return Status::ok();
        synced.push_back(parent);
        return env.sync_dir(parent);
    };
    for (const auto& d : missing)
        if (Status st = sync_parent(d); !st) return st;
    return Status::ok();
}

namespace {

std::atomic<SyncObserver> g_sync_observer{nullptr};

// Runs one sync call, reporting its duration to the observer when there is one.
template <typename F>
int timed_sync(F&& call) {
    SyncObserver obs = g_sync_observer.load(std::memory_order_relaxed);
    if (!obs) return call();
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = call();
    const int err = errno;
    obs(std::chrono::steady_clock::now() - t0);
    errno = err;
    return rc;
}

class PosixFile final : public File {
  public:
    PosixFile(std::string path, int fd) : File(std::move(path)), fd_(fd) {}
    ~PosixFile() override { ::close(fd_); }

    Result<size_t> pwritev(uint64_t offset, const iovec* iov, int iovcnt) override {
        for (;;) {
            ssize_t n = ::pwritev(fd_, iov, iovcnt, static_cast<off_t>(offset));
            if (n >= 0) return static_cast<size_t>(n);
            if (errno == EINTR) continue;
            return errno_status("write", path(), errno);
        }
    }

    void will_read(uint64_t offset, uint64_t len) const override {
        // Advice only: a failure changes nothing but speed.
        (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                              POSIX_FADV_SEQUENTIAL);
        (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                              POSIX_FADV_WILLNEED);
    }

    Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const override {
        size_t done = 0;
        auto* p = static_cast<char*>(buf);
        while (done < n) {
            ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
            if (r < 0) {
                if (errno == EINTR) continue;
                return errno_status("read", path(), errno);
            }
            if (r == 0) break;
            done += static_cast<size_t>(r);
        }
        return done;
    }

    Status datasync() override {
        if (timed_sync([this] { return ::fdatasync(fd_); }) != 0)
            return errno_status("fdatasync", path(), errno);
        return Status::ok();
    }
    Status sync() override {
        if (timed_sync([this] { return ::fsync(fd_); }) != 0)
            return errno_status("fsync", path(), errno);
        return Status::ok();
    }
    Status truncate(uint64_t size) override {
        if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
            return errno_status("ftruncate", path(), errno);
        return Status::ok();
    }
    Status allocate(uint64_t offset, uint64_t len) override {
        if (len == 0) return Status::ok();
        int rc = ::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
        if (rc == 0) return Status::ok();
        // Filesystems without fallocate (tmpfs on old kernels, some FUSE): preallocation is
        // an optimisation, so fall back to no reservation rather than failing the log.
        if (errno == EOPNOTSUPP) return Status::ok();
        return errno_status("fallocate", path(), errno);
    }
    Result<uint64_t> size() const override {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) return errno_status("fstat", path(), errno);
        return static_cast<uint64_t>(st.st_size);
    }

  private:
    int fd_;
};

class PosixEnv final : public Env {
  public:
    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
        int flags = O_CLOEXEC;
        switch (mode) {
            case OpenMode::kRead:
                flags |= O_RDONLY;
                break;
            case OpenMode::kReadWrite:
                flags |= O_RDWR;
                break;
            case OpenMode::kCreateNew:
                flags |= O_RDWR | O_CREAT | O_EXCL;
                break;
            case OpenMode::kCreateTrunc:
                flags |= O_RDWR | O_CREAT | O_TRUNC;
                break;
        }
        int fd = ::open(path.c_str(), flags, 0644);
        if (fd < 0) return errno_status("open", path, errno);
        return std::unique_ptr<File>(std::make_unique<PosixFile>(path, fd));
    }

    Status rename(const std::string& from, const std::string& to) override {
        if (::rename(from.c_str(), to.c_str()) != 0)
            return errno_status("rename", from + " -> " + to, errno);
        return Status::ok();
    }

    Status remove(const std::string& path) override {
        if (::unlink(path.c_str()) != 0) return errno_status("unlink", path, errno);
        return Status::ok();
    }

    Status sync_dir(const std::string& dir) override {
        int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return errno_status("open dir", dir, errno);
        int rc = timed_sync([fd] { return ::fsync(fd); });
        int err = errno;
        ::close(fd);
        if (rc != 0) return errno_status("fsync dir", dir, err);
        return Status::ok();
    }

    Status create_dirs(const std::string& dir) override {
        if (dir.empty()) return Status::invalid_argument("create_dirs: empty path");
        std::string cur;
        size_t pos = 0;
        while (pos != std::string::npos) {
            pos = dir.find('/', pos + 1);
            cur = dir.substr(0, pos);
            if (cur.empty() || cur == "/") continue;
            if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
                return errno_status("mkdir", cur, errno);
        }
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return errno_status("stat", dir, errno);
        if (!S_ISDIR(st.st_mode)) return Status::invalid_argument(dir + " is not a directory");
        return Status::ok();
    }

    Result<std::vector<std::string>> list_dir(const std::string& dir) override {
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) return errno_status("opendir", dir, errno);
        std::vector<std::string> names;
        errno = 0;
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(std::move(n));
        }
        int err = errno;
        ::closedir(d);
        if (err != 0) return errno_status("readdir", dir, err);
        return names;
    }

    bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

static Status write_all_slow(File& f, uint64_t offset, const iovec* iov, int iovcnt, size_t skip);

void set_sync_observer(SyncObserver obs) {
    g_sync_observer.store(obs, std::memory_order_relaxed);
}

Env* Env::posix() {
    static PosixEnv env;
    return &env;
}

Status write_all(File& f, uint64_t offset, const iovec* iov, int iovcnt) {
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    // Fast path: one syscall writes everything (the common case; no allocation).
    if (iovcnt <= IOV_MAX) {
        auto n = f.pwritev(offset, iov, iovcnt);
        if (!n) return n.status();
        if (n.value() == total) return Status::ok();
        if (n.value() == 0) return errno_status("write", f.path(), EIO);
        // Short write: continue from a copy that can be advanced.
        return write_all_slow(f, offset, iov, iovcnt, n.value());
    }
    return write_all_slow(f, offset, iov, iovcnt, 0);
}

// Drops the first w bytes from v[first..], moving `first` past fully written buffers.
static void advance(std::vector<iovec>& v, size_t& first, size_t w) {
    while (first < v.size() && (w > 0 || v[first].iov_len == 0)) {
        if (w >= v[first].iov_len) {
            w -= v[first].iov_len;
            first++;
        } else {
            v[first].iov_base = static_cast<char*>(v[first].iov_base) + w;
            v[first].iov_len -= w;
            w = 0;
        }
    }
}

static Status write_all_slow(File& f, uint64_t offset, const iovec* iov, int iovcnt, size_t skip) {
    std::vector<iovec> v(iov, iov + iovcnt);
    size_t first = 0;
    offset += skip;
    advance(v, first, skip);
    while (first < v.size()) {
        int cnt = static_cast<int>(std::min<size_t>(v.size() - first, IOV_MAX));
        auto n = f.pwritev(offset, v.data() + first, cnt);
        if (!n) return n.status();
        if (n.value() == 0) return errno_status("write", f.path(), EIO);
        offset += n.value();
        advance(v, first, n.value());
    }
    return Status::ok();
}

Status write_all(File& f, uint64_t offset, const void* data, size_t n) {
    iovec iov{const_cast<void*>(data), n};
    return write_all(f, offset, &iov, 1);
}

Status read_exact(const File& f, uint64_t offset, void* buf, size_t n) {
    auto r = f.read_at(offset, buf, n);
    if (!r) return r.status();
    if (r.value() != n)
        return Status::corruption(f.path() + " offset " + std::to_string(offset) + ": file ends " +
                                  std::to_string(n - r.value()) + " bytes early");
    return Status::ok();
}

}  // namespace raftd::wal
