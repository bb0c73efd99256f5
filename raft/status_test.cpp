#include "raft/status.h"

#include <doctest/doctest.h>

using namespace raftd;

TEST_CASE("ok_status_prints_ok_and_is_truthy") {
    Status s;
    CHECK(s.is_ok());
    CHECK(static_cast<bool>(s));
    CHECK(s.to_string() == "OK");
}

TEST_CASE("error_status_names_its_kind_and_message") {
    Status s = Status::corruption("wal/1.log offset 4096: bad CRC");
    CHECK_FALSE(s.is_ok());
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.to_string() == "Corruption: wal/1.log offset 4096: bad CRC");
}

TEST_CASE("result_holds_either_value_or_error") {
    Result<int> good(7);
    REQUIRE(good.is_ok());
    CHECK(*good == 7);
    Result<int> bad(Status::not_found("index 9"));
    CHECK_FALSE(bad.is_ok());
    CHECK(bad.status().code() == Code::kNotFound);
}
