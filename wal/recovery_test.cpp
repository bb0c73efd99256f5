// Torn and corrupt segment files: a torn tail of the last segment is cut and everything
// before it kept; damage anywhere else is refused with file, offset and index, and the files
// are left byte-for-byte as they were.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "wal/segmented_log.h"
#include "wal/testing/util.h"

using namespace raftd;
using namespace raftd::wal;
using namespace raftd::wal::testing;
namespace fs = std::filesystem;

namespace {

constexpr size_t kLen = 40;                                          // data bytes per entry
constexpr size_t kRec = kRecordHeaderSize + kEntryFixedSize + kLen;  // 66 bytes per record

SegmentedLogOptions opts(bool prealloc) {
    SegmentedLogOptions o;
    o.segment_bytes = 4096;
    o.preallocate = prealloc;
    o.cache_bytes = 0;
    return o;
}

// Builds a log of `n` entries in batches of 4; returns the paths of its segments in order.
std::vector<std::string> build(const std::string& dir, Index n, bool prealloc) {
    auto log = SegmentedLog::open(Env::posix(), dir, opts(prealloc));
    REQUIRE(log.is_ok());
    for (Index i = 1; i <= n; i += 4)
        REQUIRE(log.value()->append(make_batch(i, std::min<Index>(4, n + 1 - i), 1, kLen)).is_ok());
    std::vector<std::string> segs;
    for (auto& e : fs::directory_iterator(dir))
        segs.push_back(e.path().string());
    std::sort(segs.begin(), segs.end());
    return segs;
}

std::string read_file(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::map<std::string, std::string> snapshot_dir(const std::string& dir) {
    std::map<std::string, std::string> m;
    for (auto& e : fs::directory_iterator(dir))
        m[e.path().filename()] = read_file(e.path());
    return m;
}

void copy_dir(const std::string& from, const std::string& to) {
    fs::remove_all(to);
    fs::copy(from, to);
}

// Opens `dir` expecting success with entries 1..last intact.
std::unique_ptr<SegmentedLog> expect_recovers_to(const std::string& dir, Index last,
                                                 bool prealloc) {
    auto r = SegmentedLog::open(Env::posix(), dir, opts(prealloc));
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    auto& log = *r.value();
    REQUIRE(log.last_index() == last);
    if (last > 0) {
        auto es = log.entries(1, last + 1, UINT64_MAX);
        REQUIRE(es.is_ok());
        for (Index i = 1; i <= last; i++)
            REQUIRE((*es)[i - 1] == make_entry(i, 1, kLen));
    }
    return std::move(r.value());
}

// Opens `dir` expecting a Corruption naming `file`, `offset` and `index`, and no change.
void expect_refused(const std::string& dir, const std::string& file, uint64_t offset, Index index) {
    auto before = snapshot_dir(dir);
    auto r = SegmentedLog::open(Env::posix(), dir, opts(false));
    REQUIRE_FALSE(r.is_ok());
    const std::string msg = r.status().message();
    CHECK_MESSAGE(r.status().code() == Code::kCorruption, msg);
    CHECK_MESSAGE(msg.find(fs::path(file).filename().string()) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("offset " + std::to_string(offset) + ":") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("entry index " + std::to_string(index)) != std::string::npos, msg);
    CHECK(snapshot_dir(dir) == before);
}

}  // namespace

TEST_CASE("truncated_last_segment_recovers_at_every_byte_offset_of_its_last_records") {
    TempDir d;
    const std::string pristine = d.sub("pristine"), work = d.sub("work");
    auto segs = build(pristine, 10, false);
    REQUIRE(segs.size() == 1);
    const uint64_t size = file_size(segs[0]);
    REQUIRE(size == kSegmentHeaderSize + 10 * kRec);
    const std::string seg = work + "/" + fs::path(segs[0]).filename().string();
    for (uint64_t cut = size - 3 * kRec; cut <= size; cut++) {
        CAPTURE(cut);
        copy_dir(pristine, work);
        fs::resize_file(seg, cut);
        const Index whole = (cut - kSegmentHeaderSize) / kRec;
        const bool torn = (cut - kSegmentHeaderSize) % kRec != 0;
        {
            auto log = expect_recovers_to(work, whole, false);
            CHECK(log->recovery().torn_tail_cut == torn);
            CHECK(file_size(seg) == kSegmentHeaderSize + whole * kRec);
            // The log is writable again right where the good records end.
            REQUIRE(log->append(make_batch(whole + 1, 1, 1, kLen)).is_ok());
        }
        auto again = expect_recovers_to(work, whole + 1, false);
        CHECK_FALSE(again->recovery().torn_tail_cut);
    }
}

TEST_CASE("torn_write_into_preallocated_space_is_cut_and_space_is_reserved_again") {
    TempDir d;
    const std::string pristine = d.sub("pristine"), work = d.sub("work");
    auto segs = build(pristine, 10, true);
    const std::string seg = work + "/" + fs::path(segs[0]).filename().string();
    const uint64_t end = kSegmentHeaderSize + 10 * kRec;
    for (uint64_t keep = end - 2 * kRec; keep < end; keep += 7) {
        CAPTURE(keep);
        copy_dir(pristine, work);
        // Zero the bytes from `keep` on, as if only part of the last write reached disk.
        std::string bytes = read_file(seg);
        std::fill(bytes.begin() + static_cast<long>(keep), bytes.begin() + static_cast<long>(end),
                  '\0');
        write_file(seg, bytes);
        auto log = expect_recovers_to(work, (keep - kSegmentHeaderSize) / kRec, true);
        CHECK(file_size(seg) == 4096);
    }
}

TEST_CASE("bit_flips_in_the_last_record_are_a_torn_tail") {
    TempDir d;
    const std::string pristine = d.sub("pristine"), work = d.sub("work");
    auto segs = build(pristine, 10, false);
    const std::string seg = work + "/" + fs::path(segs[0]).filename().string();
    const uint64_t last_rec = kSegmentHeaderSize + 9 * kRec;
    for (uint64_t bit = 0; bit < kRec * 8; bit++) {
        CAPTURE(bit);
        copy_dir(pristine, work);
        std::string bytes = read_file(seg);
        bytes[last_rec + bit / 8] ^= static_cast<char>(1u << (bit % 8));
        write_file(seg, bytes);
        auto log = expect_recovers_to(work, 9, false);
        CHECK(log->recovery().torn_tail_cut);
    }
}

TEST_CASE("bit_flips_in_the_middle_are_refused_with_file_offset_and_index") {
    TempDir d;
    const std::string pristine = d.sub("pristine"), work = d.sub("work");
    auto segs = build(pristine, 150, false);  // 4 KiB segments of 60 entries: 3 segments
    REQUIRE(segs.size() == 3);
    std::mt19937 rng(11);
    struct Target {
        size_t seg;
        Index index;  // entry whose record gets the flip
    };
    // The middle of the last segment, the last record of a sealed segment, and the first.
    for (Target t : {Target{2, 130}, Target{0, 60}, Target{1, 61}, Target{0, 1}}) {
        const std::string file = work + "/" + fs::path(segs[t.seg]).filename().string();
        const Index seg_first = t.seg * 60 + 1;
        const uint64_t off = kSegmentHeaderSize + (t.index - seg_first) * kRec;
        for (int trial = 0; trial < 40; trial++) {
            const uint64_t bit = rng() % (kRec * 8);
            CAPTURE(t.index);
            CAPTURE(bit);
            copy_dir(pristine, work);
            std::string bytes = read_file(file);
            bytes[off + bit / 8] ^= static_cast<char>(1u << (bit % 8));
            write_file(file, bytes);
            expect_refused(work, file, off, t.index);
        }
    }
}

TEST_CASE("a_zeroed_block_below_the_last_record_is_refused") {
    // A block of zeros read back where records were (a lost write inside a flushed range,
    // a zeroing filesystem repair): the records after it prove it is not preallocated space.
    TempDir d;
    const std::string pristine = d.sub("pristine"), work = d.sub("work");
    auto segs = build(pristine, 150, false);
    REQUIRE(segs.size() == 3);
    for (size_t seg : {0, 2}) {  // a sealed segment, and the middle of the last one
        CAPTURE(seg);
        copy_dir(pristine, work);
        const std::string file = work + "/" + fs::path(segs[seg]).filename().string();
        std::string bytes = read_file(file);
        std::fill(bytes.begin() + 512, bytes.begin() + 1024, '\0');
        write_file(file, bytes);
        const uint64_t k = (512 - kSegmentHeaderSize) / kRec;  // the record holding byte 512
        expect_refused(work, file, kSegmentHeaderSize + k * kRec, seg * 60 + 1 + k);
    }
}

TEST_CASE("a_torn_sealed_segment_is_corruption_not_a_torn_tail") {
    TempDir d;
    auto segs = build(d.path(), 150, false);
    fs::resize_file(segs[0], file_size(segs[0]) - 5);
    expect_refused(d.path(), segs[0], kSegmentHeaderSize + 59 * kRec, 60);
}

TEST_CASE("a_missing_segment_is_refused") {
    TempDir d;
    auto segs = build(d.path(), 150, false);
    fs::remove(segs[1]);
    auto r = SegmentedLog::open(Env::posix(), d.path(), opts(false));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("does not follow") != std::string::npos);
}

TEST_CASE("a_damaged_segment_header_is_refused") {
    TempDir d;
    auto segs = build(d.path(), 10, false);
    std::string bytes = read_file(segs[0]);
    bytes[13] ^= 1;  // first_index
    write_file(segs[0], bytes);
    auto before = snapshot_dir(d.path());
    auto r = SegmentedLog::open(Env::posix(), d.path(), opts(false));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("offset 0: segment header CRC mismatch") != std::string::npos);
    CHECK(snapshot_dir(d.path()) == before);
}

TEST_CASE("leftover_temporary_segment_files_are_removed_on_open") {
    TempDir d;
    build(d.path(), 10, false);
    write_file(d.sub(segment_name(11) + ".tmp"), "half a header");
    auto log = expect_recovers_to(d.path(), 10, false);
    CHECK(log->recovery().temp_files_removed == 1);
    CHECK_FALSE(fs::exists(d.sub(segment_name(11) + ".tmp")));
}

TEST_CASE("garbage_after_preallocated_zeros_is_cut_as_a_torn_tail") {
    TempDir d;
    auto segs = build(d.path(), 10, true);
    std::string bytes = read_file(segs[0]);
    bytes[3000] = 0x55;
    write_file(segs[0], bytes);
    auto log = expect_recovers_to(d.path(), 10, true);
    CHECK(log->recovery().torn_tail_cut);
    CHECK(read_file(segs[0])[3000] == 0);
}

TEST_CASE("a_commit_record_beyond_the_entries_before_it_is_corruption") {
    TempDir d;
    {
        auto log = SegmentedLog::open(Env::posix(), d.path(), opts(false));
        REQUIRE(log.is_ok());
        REQUIRE(log.value()->append(make_batch(1, 3, 1, kLen), 2).is_ok());
    }
    const std::string seg = d.path() + "/00000000000000000001.log";
    std::string bytes = read_file(seg);
    REQUIRE(bytes.size() == kSegmentHeaderSize + 3 * kRec + kCommitRecordSize);
    // A well-formed record (its CRC holds) that names entry 4, which is not before it.
    encode_commit_record(4, bytes.data() + bytes.size() - kCommitRecordSize);
    write_file(seg, bytes);
    auto before = snapshot_dir(d.path());
    auto r = SegmentedLog::open(Env::posix(), d.path(), opts(false));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("commit record says 4") != std::string::npos);
    CHECK(snapshot_dir(d.path()) == before);
}

TEST_CASE("a_torn_commit_record_is_cut_with_its_batch_tail") {
    // The commit record is the last bytes of its batch: torn, it is cut like a torn entry,
    // and the commit it held is not recovered.
    TempDir d;
    {
        auto log = SegmentedLog::open(Env::posix(), d.path(), opts(false));
        REQUIRE(log.is_ok());
        REQUIRE(log.value()->append(make_batch(1, 3, 1, kLen), 1).is_ok());
        REQUIRE(log.value()->append(make_batch(4, 3, 1, kLen), 5).is_ok());
    }
    const std::string seg = d.path() + "/00000000000000000001.log";
    std::string bytes = read_file(seg);
    bytes.resize(bytes.size() - 3);
    write_file(seg, bytes);
    auto r = SegmentedLog::open(Env::posix(), d.path(), opts(false));
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    CHECK(r.value()->recovery().torn_tail_cut);
    CHECK(r.value()->last_index() == 6);
    CHECK(r.value()->durable_commit() == 1);
}
