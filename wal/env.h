// Env: the thin layer between wal/ and the operating system's file calls.
//
// Owns: open file handles (RAII, closed in the destructor) and the conversion of every
// errno into a Status that names the call, the path and the errno text. Everything in wal/
// that touches a file goes through here, so tests can swap in FaultEnv (wal/testing/fault_env.h)
// to inject write/fsync failures, short writes, ENOSPC and crashes.
// Never: retry a failed write or sync behind the caller's back, or throw.
//
// Thread rules: an Env is stateless and callable from any thread. One File may be read
// (read_at) from several threads while one thread writes it; writes to one File come from
// one thread at a time.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/status.h"

namespace raftd::wal {

// Called after every fsync-family call of the POSIX Env (file datasync/sync, directory
// sync) with how long it took: the daemon's fsync latency histogram. Null (the default)
// costs one relaxed load per sync. Set at start-up; the observer runs on the syncing thread
// and must not block.
using SyncObserver = void (*)(std::chrono::nanoseconds);
void set_sync_observer(SyncObserver obs);

class File {
  public:
    virtual ~File() = default;
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    const std::string& path() const { return path_; }

    // One pwritev at `offset`. May write fewer bytes than asked (returned); an error when
    // nothing could be written. Callers use write_all() below, which loops.
    virtual Result<size_t> pwritev(uint64_t offset, const iovec* iov, int iovcnt) = 0;
    // Reads up to n bytes at offset; fewer only at end of file.
    virtual Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const = 0;
    // A hint that [offset, offset+len) will be read soon, front to back: the OS may start
    // reading it in the background (recovery overlaps its CRC checks with the disk this way).
    virtual void will_read(uint64_t offset, uint64_t len) const {
        (void)offset;
        (void)len;
    }
    virtual Status datasync() = 0;  // fdatasync: data plus the metadata needed to read it
    virtual Status sync() = 0;      // fsync
    virtual Status truncate(uint64_t size) = 0;
    // Reserves [offset, offset+len) and extends the file size to cover it (mode 0), so
    // later writes into the range do not grow the file.
    virtual Status allocate(uint64_t offset, uint64_t len) = 0;
    virtual Result<uint64_t> size() const = 0;

  protected:
    explicit File(std::string path) : path_(std::move(path)) {}

  private:
    std::string path_;
};

enum class OpenMode {
    kRead,         // existing file, read only
    kReadWrite,    // existing file
    kCreateNew,    // create; fails if it exists
    kCreateTrunc,  // create or truncate to zero
};

class Env {
  public:
    virtual ~Env() = default;

    virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
    virtual Status rename(const std::string& from, const std::string& to) = 0;
    virtual Status remove(const std::string& path) = 0;
    // fsync of a directory: makes creations, renames and removals in it durable.
    virtual Status sync_dir(const std::string& dir) = 0;
    // mkdir -p; ok when it already exists as a directory.
    virtual Status create_dirs(const std::string& dir) = 0;
    // Names (not paths) of the entries in dir, without "." and "..".
    virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
    virtual bool exists(const std::string& path) = 0;

    // The process-wide POSIX implementation.
    static Env* posix();
};

// Writes every byte of iov at offset, looping over short writes. A write that makes no
// progress (returns 0) is an error rather than a spin.
Status write_all(File& f, uint64_t offset, const iovec* iov, int iovcnt);
Status write_all(File& f, uint64_t offset, const void* data, size_t n);
// Reads exactly n bytes or fails (kCorruption naming the path when the file is shorter).
Status read_exact(const File& f, uint64_t offset, void* buf, size_t n);

// "<op> <path>: <strerror(err)>" as an IoError; the one place errno becomes a Status.
Status errno_status(const char* op, const std::string& path, int err);

std::string join_path(const std::string& dir, const std::string& name);
// The directory holding `path`'s entry: "a/b" -> "a", "b" -> ".", "/b" -> "/".
std::string parent_dir(const std::string& path);

// env.create_dirs(dir), then makes the new directory entries survive a power cut: fsyncs
// the parent of every directory this call created. A directory that existed is left alone
// (its parent may not even be readable); callers that find `dir` existing but still empty
// of their state sync its parent themselves, since a crash may have come between an
// earlier mkdir and its sync. A file or directory created inside `dir` is durable only once
// `dir` is synced as well: that sync is the caller's, after it created its entries.
Status create_dirs_durably(Env& env, const std::string& dir);

}  // namespace raftd::wal
