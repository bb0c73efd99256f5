// The daemon's store until wal::DurableStorage lands: wal::Log for entries plus a small
// hard-state file replaced atomically (write temp, fsync, rename, fsync dir).
//
// Owns: the Log and the hard state. Snapshots are not supported here: a job carrying one is
// refused (the daemon then stops), so nothing is silently lost.
// Never: publish a hard state before its file is durable.
// Thread rules: see durable.h.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "daemon/durable.h"
#include "wal/log.h"

namespace raftd::daemon {
namespace {

constexpr size_t kHardStateBytes = 8 + 24;  // magic, term, vote, commit

Status errno_status(const std::string& what) {
    return Status::io_error(what + ": " + std::strerror(errno));
}

void put64(char* p, uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
uint64_t get64(const char* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
constexpr uint64_t kMagic = 0x7261667464485331ULL;  // "raftdHS1"

class LogStore final : public DurableStore, public raft::Storage {
  public:
    LogStore(std::string dir, std::unique_ptr<wal::Log> log, raft::HardState hs)
        : dir_(std::move(dir)), log_(std::move(log)), hard_(hs) {}

    const raft::Storage& storage() const override { return *this; }
    const raft::SnapshotSource* snapshots() const override { return nullptr; }
    bool empty() const override { return hard_.empty() && log_->last_index() == 0; }

    Status persist(PersistJob& job) override {
        if (!job.chunks.empty() || job.snapshot)
            return Status::internal("this build's store cannot install snapshots");
        if (!job.entries.empty()) {
            if (Status st = log_->append(job.entries); !st) return st;
        }
        if (job.hard_state) {
            if (Status st = write_hard_state(*job.hard_state); !st) return st;
            std::lock_guard g(mu_);
            hard_ = *job.hard_state;
        }
        return Status::ok();
    }
    Status close() override { return Status::ok(); }

    // raft::Storage
    raft::InitialState initial_state() const override {
        std::lock_guard g(mu_);
        return raft::InitialState{hard_, {}};
    }
    Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                             uint64_t max_bytes) const override {
        return log_->entries(lo, hi, max_bytes);
    }
    Result<raft::Term> term(raft::Index i) const override { return log_->term(i); }
    raft::Index first_index() const override { return log_->first_index(); }
    raft::Index last_index() const override { return log_->last_index(); }
    raft::SnapshotMeta snapshot_meta() const override { return {}; }

    static Result<raft::HardState> read_hard_state(const std::string& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) return raft::HardState{};
            return errno_status(path);
        }
        char buf[kHardStateBytes + 1];
        ssize_t n = ::read(fd, buf, sizeof buf);
        ::close(fd);
        if (n != static_cast<ssize_t>(kHardStateBytes) || get64(buf) != kMagic)
            return Status::corruption(path + ": not a hard state file");
        return raft::HardState{get64(buf + 8), get64(buf + 16), get64(buf + 24)};
    }

  private:
    Status write_hard_state(const raft::HardState& hs) {
        char buf[kHardStateBytes];
        put64(buf, kMagic);
        put64(buf + 8, hs.term);
        put64(buf + 16, hs.vote);
        put64(buf + 24, hs.commit);
        const std::string path = dir_ + "/hardstate", tmp = path + ".tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return errno_status(tmp);
        bool ok = ::write(fd, buf, sizeof buf) == static_cast<ssize_t>(sizeof buf) &&
                  ::fdatasync(fd) == 0;
        int saved = errno;
        ::close(fd);
        errno = saved;
        if (!ok) return errno_status(tmp);
        if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_status(path);
        int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) return errno_status(dir_);
        ok = ::fsync(dfd) == 0;
        ::close(dfd);
        if (!ok) return errno_status(dir_);
        return Status::ok();
    }

    std::string dir_;
    std::unique_ptr<wal::Log> log_;
    mutable std::mutex mu_;
    raft::HardState hard_;
};

}  // namespace

Result<std::unique_ptr<DurableStore>> open_store(const std::string& dir,
                                                 const StoreOptions& opts) {
    wal::LogOptions lo;
    lo.segment_bytes = opts.segment_bytes;
    lo.cache_bytes = opts.cache_bytes;
    lo.compact_keep_entries = opts.keep_entries;
    auto log = wal::Log::open(wal::Env::posix(), dir + "/wal", lo);
    if (!log) return log.status();
    auto hs = LogStore::read_hard_state(dir + "/hardstate");
    if (!hs) return hs.status();
    return std::unique_ptr<DurableStore>(
        std::make_unique<LogStore>(dir, std::move(log).value(), *hs));
}

}  // namespace raftd::daemon
