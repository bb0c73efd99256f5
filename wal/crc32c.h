// CRC32C (Castagnoli), the checksum of every WAL record and snapshot file.
//
// Owns: the checksum arithmetic, with the SSE4.2 crc32 instruction when the CPU has it
// (chosen once at start-up) and a table-driven fallback that gives identical results.
// Never: allocate or touch I/O; it is called on the proposal path for every record.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raftd::crc32c {

// Extends `crc` (the CRC of earlier bytes, 0 for none) with `n` bytes at `data`.
uint32_t extend(uint32_t crc, const void* data, size_t n);
inline uint32_t value(const void* data, size_t n) {
    return extend(0, data, n);
}

// Stored CRCs are masked so a CRC computed over bytes that themselves hold a CRC does not
// degenerate (the same trick LevelDB's log uses; the constant is ours, documented in
// docs/wal-format.md).
inline uint32_t mask(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0x9e3779b9u;
}
inline uint32_t unmask(uint32_t m) {
    uint32_t rot = m - 0x9e3779b9u;
    return (rot >> 17) | (rot << 15);
}

// True when extend() uses the hardware instruction; reported by benchmarks.
bool hardware_accelerated();

}  // namespace raftd::crc32c
