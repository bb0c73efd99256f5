#include "wal/crc32c.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace raftd::crc32c {
uint32_t extend_software_for_test(uint32_t crc, const void* data, size_t n);
}

using namespace raftd;

// Vectors from RFC 3720 (iSCSI), appendix B.4, plus the common "123456789" check value.
TEST_CASE("crc32c_matches_rfc3720_vectors") {
    std::vector<uint8_t> buf(32, 0);
    CHECK(crc32c::value(buf.data(), buf.size()) == 0x8a9136aau);
    std::memset(buf.data(), 0xff, buf.size());
    CHECK(crc32c::value(buf.data(), buf.size()) == 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = static_cast<uint8_t>(i);
    CHECK(crc32c::value(buf.data(), buf.size()) == 0x46dd794eu);
    for (int i = 0; i < 32; i++)
        buf[i] = static_cast<uint8_t>(31 - i);
    CHECK(crc32c::value(buf.data(), buf.size()) == 0x113fdb5cu);
    std::string s = "123456789";
    CHECK(crc32c::value(s.data(), s.size()) == 0xe3069283u);
}

TEST_CASE("crc32c_extend_equals_crc_of_concatenation") {
    std::string a = "hello ", b = "world";
    uint32_t whole = crc32c::value((a + b).data(), a.size() + b.size());
    CHECK(crc32c::extend(crc32c::value(a.data(), a.size()), b.data(), b.size()) == whole);
}

TEST_CASE("crc32c_hardware_and_software_paths_agree") {
    std::mt19937 rng(42);
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4099u}) {
        std::vector<uint8_t> v(len);
        for (auto& x : v)
            x = static_cast<uint8_t>(rng());
        CHECK(crc32c::extend(0, v.data(), len) ==
              crc32c::extend_software_for_test(0, v.data(), len));
    }
}

TEST_CASE("crc32c_mask_round_trips_and_changes_value") {
    for (uint32_t c : {0u, 1u, 0xe3069283u, 0xffffffffu}) {
        CHECK(crc32c::unmask(crc32c::mask(c)) == c);
        CHECK(crc32c::mask(c) != c);
    }
}
