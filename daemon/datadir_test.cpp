#include "daemon/datadir.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "daemon/testing/util.h"
#include "wal/testing/fault_env.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

// DataDir::open(dir, "alpha", 1) through an Env that records each file-system operation it
// makes, as "op path", into `ops`.
Result<std::unique_ptr<DataDir>> open_recording(const std::string& dir,
                                                std::vector<std::string>& ops) {
    wal::FaultEnv env(wal::Env::posix());
    env.set_hook([&](std::string_view op, const std::string& p) {
        ops.push_back(std::string(op) + " " + p);
        return 0;
    });
    auto dd = DataDir::open(dir, "alpha", 1, &env);
    env.set_hook(nullptr);
    return dd;
}

}  // namespace

TEST_CASE("a_new_data_dir_is_created_with_its_identity") {
    testing::TempDir tmp;
    std::string dir = tmp.file("data/node1");
    {
        auto dd = DataDir::open(dir, "alpha", 1);
        REQUIRE_MESSAGE(dd.is_ok(), dd.status().to_string());
        CHECK((*dd)->fresh());
        CHECK(testing::read_file(dir + "/IDENTITY") ==
              "raftd data directory\ncluster = alpha\nnode_id = 1\n");
    }  // the lock is released here
    auto again = DataDir::open(dir, "alpha", 1);
    REQUIRE(again.is_ok());
    CHECK_FALSE((*again)->fresh());
}

TEST_CASE("a_data_dir_of_another_cluster_or_node_is_refused") {
    testing::TempDir tmp;
    std::string dir = tmp.file("d");
    { REQUIRE(DataDir::open(dir, "alpha", 1).is_ok()); }
    auto other = DataDir::open(dir, "beta", 1);
    REQUIRE_FALSE(other.is_ok());
    CHECK(other.status().message() ==
          "data_dir " + dir + " belongs to cluster \"alpha\", not \"beta\"");
    auto node = DataDir::open(dir, "alpha", 2);
    REQUIRE_FALSE(node.is_ok());
    CHECK(node.status().message() == "data_dir " + dir + " belongs to node 1, not node 2");
}

TEST_CASE("a_second_raftd_on_the_same_data_dir_is_refused_while_the_first_runs") {
    testing::TempDir tmp;
    std::string dir = tmp.file("d");
    auto first = DataDir::open(dir, "alpha", 1);
    REQUIRE(first.is_ok());
    auto second = DataDir::open(dir, "alpha", 1);
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().code() == Code::kBusy);
    CHECK(second.status().message().find("is in use by another raftd (pid ") != std::string::npos);
}

TEST_CASE("a_non_empty_directory_without_identity_is_not_adopted") {
    testing::TempDir tmp;
    testing::write_file(tmp.file("notes.txt"), "precious");
    auto dd = DataDir::open(tmp.path().string(), "alpha", 1);
    REQUIRE_FALSE(dd.is_ok());
    CHECK(dd.status().message().find("holds no raftd IDENTITY") != std::string::npos);
    CHECK(testing::read_file(tmp.file("notes.txt")) == "precious");
    CHECK_FALSE(std::filesystem::exists(tmp.file("IDENTITY")));
}

TEST_CASE("a_garbled_identity_is_corruption") {
    testing::TempDir tmp;
    testing::write_file(tmp.file("IDENTITY"), "hello\n");
    auto dd = DataDir::open(tmp.path().string(), "alpha", 1);
    REQUIRE_FALSE(dd.is_ok());
    CHECK(dd.status().code() == Code::kCorruption);
}

TEST_CASE("a_new_data_dir_and_its_identity_are_synced_into_their_parents") {
    // A data dir whose entry a power cut takes back comes up empty and would bootstrap
    // again: every created entry is fsynced in its parent.
    testing::TempDir tmp;
    const std::string top = tmp.path().string(), mid = tmp.file("data"),
                      dir = tmp.file("data/node1");
    std::vector<std::string> ops;
    auto dd = open_recording(dir, ops);
    REQUIRE_MESSAGE(dd.is_ok(), dd.status().to_string());
    auto at = [&](const std::string& what, size_t from = 0) {
        auto it = std::find(ops.begin() + static_cast<long>(from), ops.end(), what);
        return static_cast<size_t>(it - ops.begin());
    };
    const size_t made = at("create_dirs " + dir);
    REQUIRE(made < ops.size());
    CHECK(at("sync_dir " + top, made) < ops.size());  // "data" in the scratch dir
    CHECK(at("sync_dir " + mid, made) < ops.size());  // "node1" in "data"
    const size_t renamed = at("rename " + dir + "/IDENTITY.tmp");
    REQUIRE(renamed < ops.size());
    CHECK(at("sync " + dir + "/IDENTITY.tmp") < renamed);  // the identity's bytes
    CHECK(at("sync_dir " + dir, renamed) < ops.size());    // its name
}

TEST_CASE("an_existing_empty_data_dir_is_synced_into_its_parent_before_its_identity") {
    // Made by an operator, or by a start that crashed between mkdir and the sync.
    testing::TempDir tmp;
    const std::string dir = tmp.file("d");
    std::filesystem::create_directory(dir);
    std::vector<std::string> ops;
    auto dd = open_recording(dir, ops);
    REQUIRE(dd.is_ok());
    auto parent = std::find(ops.begin(), ops.end(), "sync_dir " + tmp.path().string());
    auto identity = std::find(ops.begin(), ops.end(), "rename " + dir + "/IDENTITY.tmp");
    CHECK(parent < identity);
    CHECK(identity != ops.end());
}
