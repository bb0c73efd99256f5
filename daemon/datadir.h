// DataDir: the data directory's identity and its exclusive lock.
//
// Owns: the directory itself (created when missing), a LOCK file held with flock() for the
// life of the process, and the IDENTITY file naming the cluster and node the directory was
// created for. Everything else in the directory belongs to wal/.
// Never: start on a directory made for another cluster or node, on one another raftd holds,
// or on a non-empty directory without an identity (a mistyped path must not be adopted).
//
// Thread rules: loop thread only; opened once at start-up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "raft/status.h"
#include "wal/env.h"

namespace raftd::daemon {

class DataDir {
  public:
    // Creates `path` when missing, takes the lock, and checks or (for a fresh directory)
    // durably writes the identity: the directory's entry in its parent and the identity's
    // in the directory are fsynced (through `env`, so tests can watch). Errors are one line
    // naming the directory and the problem.
    static Result<std::unique_ptr<DataDir>> open(const std::string& path,
                                                 const std::string& cluster, uint64_t node_id,
                                                 wal::Env* env = wal::Env::posix());
    ~DataDir();
    DataDir(const DataDir&) = delete;
    DataDir& operator=(const DataDir&) = delete;

    const std::string& path() const { return path_; }
    // True when this start created the identity. Only informational: whether to bootstrap
    // is decided from the recovered log (empty log and hard state), since a crash may fall
    // between writing the identity and writing the first entry.
    bool fresh() const { return fresh_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }

  private:
    struct Token {};  // lets open() use make_unique while construction stays private

  public:
    DataDir(Token, std::string path, int lock_fd)
        : path_(std::move(path)), lock_fd_(lock_fd), fresh_(false) {}

  private:
    std::string path_;
    int lock_fd_;
    bool fresh_;
};

}  // namespace raftd::daemon
