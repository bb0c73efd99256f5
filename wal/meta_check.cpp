// See meta_check.h. LevelDB's formats: doc/log_format.md (32 KiB blocks of records: masked
// CRC 4, length 2, type 1: FULL 1, FIRST 2, MIDDLE 3, LAST 4) and version_edit.cc (tagged
// fields: varint32 tag, then per tag as below).
#include "wal/meta_check.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>

namespace raftd::wal {

namespace {

constexpr size_t kBlock = 32768;
constexpr size_t kHeader = 7;

std::optional<std::string> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(f), {});
}

bool varint(std::string_view& in, uint64_t& v) {
    v = 0;
    for (int shift = 0; shift <= 63 && !in.empty(); shift += 7) {
        const auto b = static_cast<uint8_t>(in.front());
        in.remove_prefix(1);
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

bool slice(std::string_view& in) {
    uint64_t n = 0;
    if (!varint(in, n) || n > in.size()) return false;
    in.remove_prefix(n);
    return true;
}

// The log number a VersionEdit sets, if any; false when it does not parse.
bool edit_log_number(std::string_view in, std::optional<uint64_t>& log) {
    uint64_t tag = 0, v = 0;
    while (!in.empty()) {
        if (!varint(in, tag)) return false;
        switch (tag) {
            case 1:  // comparator
                if (!slice(in)) return false;
                break;
            case 2:  // log number
                if (!varint(in, v)) return false;
                log = v;
                break;
            case 3:  // next file number
            case 4:  // last sequence
            case 9:  // previous log number
                if (!varint(in, v)) return false;
                break;
            case 5:  // compact pointer: level, key
                if (!varint(in, v) || !slice(in)) return false;
                break;
            case 6:  // deleted file: level, number
                if (!varint(in, v) || !varint(in, v)) return false;
                break;
            case 7:  // new file: level, number, size, smallest, largest
                if (!varint(in, v) || !varint(in, v) || !varint(in, v) || !slice(in) || !slice(in))
                    return false;
                break;
            default:
                return false;
        }
    }
    return true;
}

}  // namespace

Status check_leveldb_log_present(const std::string& meta_dir) {
    auto current = read_all(meta_dir + "/CURRENT");
    if (!current || current->empty() || current->back() != '\n') return Status::ok();
    current->pop_back();
    auto manifest = read_all(meta_dir + "/" + *current);
    if (!manifest) return Status::ok();
    std::optional<uint64_t> log;
    std::string record;
    const std::string_view all(*manifest);
    for (size_t block = 0; block < all.size(); block += kBlock) {
        std::string_view b = all.substr(block, kBlock);
        while (b.size() >= kHeader) {
            const size_t len = static_cast<uint8_t>(b[4]) | static_cast<uint8_t>(b[5]) << 8;
            const auto type = static_cast<uint8_t>(b[6]);
            if (type == 0 && len == 0) break;  // the zero padding at a block's end
            if (kHeader + len > b.size() || type < 1 || type > 4) return Status::ok();
            if (type == 1 || type == 2) record.clear();
            record.append(b.substr(kHeader, len));
            if ((type == 1 || type == 4) && !edit_log_number(record, log)) return Status::ok();
            b.remove_prefix(kHeader + len);
        }
    }
    if (!log || *log == 0) return Status::ok();
    char name[32];
    std::snprintf(name, sizeof name, "%06" PRIu64 ".log", *log);
    std::error_code ec;
    if (std::filesystem::exists(meta_dir + "/" + name, ec) || ec) return Status::ok();
    return Status::corruption("meta/" + std::string(name) + ", the LevelDB log that " + *current +
                              " names, is missing: the term, vote and commit written since "
                              "raftd last started are lost");
}

}  // namespace raftd::wal
