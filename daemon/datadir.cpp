#include "daemon/datadir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace raftd::daemon {
namespace {

constexpr const char* kIdentity = "IDENTITY";
constexpr const char* kLock = "LOCK";

Status errno_error(const std::string& what) {
    return Status::io_error(what + ": " + std::strerror(errno));
}

// Writes the identity through a temporary file and a rename, both made durable, so a crash
// leaves either no identity or a whole one.
Status write_identity(wal::Env& env, const std::string& dir, const std::string& cluster,
                      uint64_t node_id) {
    std::string tmp = dir + "/" + kIdentity + ".tmp";
    std::string text = "raftd data directory\ncluster = " + cluster +
                       "\nnode_id = " + std::to_string(node_id) + "\n";
    {
        auto f = env.open(tmp, wal::OpenMode::kCreateTrunc);
        if (!f) return f.status();
        if (Status st = wal::write_all(**f, 0, text.data(), text.size()); !st) return st;
        if (Status st = (*f)->sync(); !st) return st;
    }
    if (Status st = env.rename(tmp, dir + "/" + kIdentity); !st) return st;
    return env.sync_dir(dir);
}

struct Identity {
    std::string cluster;
    uint64_t node_id = 0;
};

Result<Identity> read_identity(const std::string& path) {
    std::ifstream in(path);
    if (!in) return errno_error("read " + path);
    std::string line;
    Identity id;
    bool header = false;
    while (std::getline(in, line)) {
        if (line == "raftd data directory")
            header = true;
        else if (line.rfind("cluster = ", 0) == 0)
            id.cluster = line.substr(10);
        else if (line.rfind("node_id = ", 0) == 0)
            id.node_id = std::strtoull(line.c_str() + 10, nullptr, 10);
    }
    if (!header || id.cluster.empty() || id.node_id == 0)
        return Status::corruption(path + ": not a raftd identity file");
    return id;
}

}  // namespace

Result<std::unique_ptr<DataDir>> DataDir::open(const std::string& path, const std::string& cluster,
                                               uint64_t node_id, wal::Env* env) {
    std::error_code ec;
    // A directory made on first start must still be there after a power cut, or the node
    // would come back empty and bootstrap again: its entry in the parent is synced.
    if (Status st = wal::create_dirs_durably(*env, path); !st)
        return Status(st.code(), "data_dir " + path + ": cannot create: " + st.message());
    if (!std::filesystem::is_directory(path, ec))
        return Status::invalid_argument("data_dir " + path + ": not a directory");

    std::string lock_path = path + "/" + kLock;
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0) return errno_error("data_dir " + path + ": cannot open " + kLock);
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = {};
        ssize_t n = ::pread(lock_fd, pid, sizeof pid - 1, 0);
        ::close(lock_fd);
        if (err == EWOULDBLOCK) {
            std::string holder = n > 0 ? " (pid " + std::string(pid, strcspn(pid, "\n")) + ")" : "";
            return Status::busy("data_dir " + path + " is in use by another raftd" + holder);
        }
        errno = err;
        return errno_error("data_dir " + path + ": cannot lock");
    }
    // The pid is only a hint for the error above; the flock is what excludes.
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0) {
        // not fatal: the lock is held either way
    }
    auto dd = std::make_unique<DataDir>(Token{}, path, lock_fd);

    std::string id_path = path + "/" + kIdentity;
    if (std::filesystem::exists(id_path, ec)) {
        auto id = read_identity(id_path);
        if (!id)
            return Status(id.status().code(), "data_dir " + path + ": " + id.status().message());
        if (id->cluster != cluster)
            return Status::invalid_argument("data_dir " + path + " belongs to cluster \"" +
                                            id->cluster + "\", not \"" + cluster + "\"");
        if (id->node_id != node_id)
            return Status::invalid_argument("data_dir " + path + " belongs to node " +
                                            std::to_string(id->node_id) + ", not node " +
                                            std::to_string(node_id));
        return dd;
    }
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
        std::string name = e.path().filename().string();
        if (name != kLock && name != std::string(kIdentity) + ".tmp")
            return Status::invalid_argument("data_dir " + path +
                                            " is not empty but holds no raftd IDENTITY; "
                                            "refusing to adopt it (found " +
                                            name + ")");
    }
    // The directory may predate this start (made by an operator, or by a start that crashed
    // before syncing it): its entry must be durable before the node's state goes in.
    Status st = env->sync_dir(wal::parent_dir(path));
    if (st) st = write_identity(*env, path, cluster, node_id);
    if (!st) return Status(st.code(), "data_dir " + path + ": " + st.message());
    dd->fresh_ = true;
    return dd;
}

DataDir::~DataDir() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

}  // namespace raftd::daemon
