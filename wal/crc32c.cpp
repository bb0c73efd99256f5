#include "wal/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace raftd::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

// Slicing-by-8 tables: portable fallback fast enough that a missing SSE4.2 is not a cliff.
struct Tables {
    std::array<std::array<uint32_t, 256>, 8> t{};
    constexpr Tables() {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
            for (int s = 1; s < 8; s++)
                t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
};
constexpr Tables kTables;

uint32_t extend_portable(uint32_t crc, const uint8_t* p, size_t n) {
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = kTables.t[7][lo & 0xff] ^ kTables.t[6][(lo >> 8) & 0xff] ^
            kTables.t[5][(lo >> 16) & 0xff] ^ kTables.t[4][lo >> 24] ^ kTables.t[3][hi & 0xff] ^
            kTables.t[2][(hi >> 8) & 0xff] ^ kTables.t[1][(hi >> 16) & 0xff] ^
            kTables.t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = kTables.t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const uint8_t* p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = static_cast<uint32_t>(c);
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

bool detect() {
    return __builtin_cpu_supports("sse4.2");
}
#else
bool detect() {
    return false;
}
#endif

const bool kHw = detect();

}  // namespace

uint32_t extend(uint32_t crc, const void* data, size_t n) {
    auto p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
    if (kHw) return extend_sse42(crc, p, n);
#endif
    return extend_portable(crc, p, n);
}

bool hardware_accelerated() {
    return kHw;
}

// Exposed for the test that proves both paths agree.
uint32_t extend_software_for_test(uint32_t crc, const void* data, size_t n) {
    return extend_portable(crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace raftd::crc32c
