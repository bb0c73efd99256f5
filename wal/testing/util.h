// Helpers shared by the wal/ test suites: a scratch directory and entry builders.
//
// Owns: a temporary directory per test (removed, with its contents, on destruction).
// Never: used outside *_test.cpp files.
// Thread rules: test thread only.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "raft/types.h"

namespace raftd::wal::testing {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "raftd-wal-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// Deterministic content so a test (or a crash-test parent) can recompute what entry i
// must hold.
inline std::string entry_data(raft::Index i, size_t len, uint64_t salt = 0) {
    std::string s(len, '\0');
    uint64_t x = i * 0x9e3779b97f4a7c15ull + salt * 0xbf58476d1ce4e5b9ull + 1;
    for (size_t k = 0; k < len; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s[k] = static_cast<char>(x);
    }
    return s;
}

inline raft::Entry make_entry(raft::Index i, raft::Term t, size_t len, uint64_t salt = 0) {
    return raft::Entry{i, t, raft::EntryType::kData, raft::Payload(entry_data(i, len, salt))};
}

inline std::vector<raft::Entry> make_batch(raft::Index first, size_t n, raft::Term t, size_t len,
                                           uint64_t salt = 0) {
    std::vector<raft::Entry> v;
    for (size_t k = 0; k < n; k++)
        v.push_back(make_entry(first + k, t, len, salt));
    return v;
}

inline uint64_t file_size(const std::string& p) {
    return std::filesystem::file_size(p);
}

}  // namespace raftd::wal::testing
