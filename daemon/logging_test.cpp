#include "daemon/logging.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "daemon/testing/util.h"

using namespace raftd;
using namespace raftd::daemon;

namespace {

Config file_logging(const std::string& path, std::string format) {
    Config c = default_config();
    c.node_id = 7;
    c.log_file = path;
    c.log_format = std::move(format);
    c.log_level = "debug";
    return c;
}

}  // namespace

TEST_CASE("auto_format_is_journal_under_systemd_on_stderr_and_text_otherwise") {
    CHECK(resolve_log_style("auto", false, true) == LogStyle::kJournal);
    CHECK(resolve_log_style("auto", true, true) == LogStyle::kText);
    CHECK(resolve_log_style("auto", false, false) == LogStyle::kText);
    CHECK(resolve_log_style("plain", false, false) == LogStyle::kPlain);
    CHECK(resolve_log_style("journal", true, false) == LogStyle::kJournal);
}

TEST_CASE("plain_lines_carry_level_and_node_id_but_no_timestamp") {
    testing::TempDir dir;
    std::string path = dir.file("raftd.log");
    REQUIRE(init_logging(file_logging(path, "plain")).is_ok());
    spdlog::info("became leader at term {}", 3);
    spdlog::trace("below the level: not written");
    spdlog::warn("peer {} unreachable", 2);
    CHECK(testing::read_file(path) ==
          "[info] n7: became leader at term 3\n[warning] n7: peer 2 unreachable\n");
}

TEST_CASE("journal_lines_start_with_the_syslog_priority") {
    testing::TempDir dir;
    std::string path = dir.file("raftd.log");
    REQUIRE(init_logging(file_logging(path, "journal")).is_ok());
    spdlog::error("fsync failed");
    spdlog::debug("dialling");
    CHECK(testing::read_file(path) == "<3>[error] n7: fsync failed\n<7>[debug] n7: dialling\n");
}

TEST_CASE("text_lines_start_with_a_timestamp") {
    testing::TempDir dir;
    std::string path = dir.file("raftd.log");
    REQUIRE(init_logging(file_logging(path, "text")).is_ok());
    spdlog::info("hello");
    std::string line = testing::read_file(path);
    // "2024-05-01T12:00:00.123 [info] n7: hello\n"
    REQUIRE(line.size() == 23 + 18);
    CHECK(line[4] == '-');
    CHECK(line[10] == 'T');
    CHECK(line.substr(23) == " [info] n7: hello\n");
}

TEST_CASE("reopen_after_rename_writes_to_a_fresh_file_at_the_configured_path") {
    testing::TempDir dir;
    std::string path = dir.file("raftd.log");
    std::string rotated = dir.file("raftd.log.1");
    REQUIRE(init_logging(file_logging(path, "plain")).is_ok());
    spdlog::info("before rotation");
    std::filesystem::rename(path, rotated);
    spdlog::info("still to the renamed file");
    REQUIRE(reopen_logs().is_ok());
    spdlog::info("after rotation");
    CHECK(testing::read_file(rotated) ==
          "[info] n7: before rotation\n[info] n7: still to the renamed file\n");
    CHECK(testing::read_file(path) == "[info] n7: after rotation\n");
}

TEST_CASE("a_log_file_that_cannot_be_opened_is_a_startup_error") {
    testing::TempDir dir;
    Status st = init_logging(file_logging(dir.file("missing/dir/raftd.log"), "plain"));
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.message().find("missing/dir/raftd.log: cannot open") != std::string::npos);
}

TEST_CASE("a_failed_reopen_keeps_the_old_file") {
    testing::TempDir dir;
    std::filesystem::create_directory(dir.path() / "logs");
    std::string path = dir.file("logs/raftd.log");
    REQUIRE(init_logging(file_logging(path, "plain")).is_ok());
    std::filesystem::rename(dir.path() / "logs", dir.path() / "moved");
    CHECK_FALSE(reopen_logs().is_ok());
    spdlog::info("kept");
    CHECK(testing::read_file(dir.file("moved/raftd.log")) == "[info] n7: kept\n");
}
