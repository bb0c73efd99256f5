// Round-trip, random-access, bounds and cache behaviour of wal::SegmentedLog.
#include "wal/segmented_log.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "wal/testing/util.h"

using namespace raftd;
using namespace raftd::wal;
using namespace raftd::wal::testing;
using raft::Entry;

namespace {

std::unique_ptr<SegmentedLog> open_log(const std::string& dir, SegmentedLogOptions o = {}) {
    auto r = SegmentedLog::open(Env::posix(), dir, o);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    return std::move(r.value());
}

SegmentedLogOptions small_segments() {
    SegmentedLogOptions o;
    o.segment_bytes = 4096;
    o.cache_bytes = 0;
    return o;
}

void check_all(const SegmentedLog& log, Index first, Index last, size_t len, uint64_t salt = 0) {
    REQUIRE(log.first_index() == first);
    REQUIRE(log.last_index() == last);
    auto r = log.entries(first, last + 1, UINT64_MAX);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    REQUIRE(r->size() == last + 1 - first);
    for (Index i = first; i <= last; i++) {
        const Entry& e = (*r)[i - first];
        CHECK(e.index == i);
        CHECK(e.data.view() == entry_data(i, len, salt));
    }
}

}  // namespace

TEST_CASE("new_log_is_empty_and_starts_at_index_one") {
    TempDir d;
    auto log = open_log(d.path());
    CHECK(log->first_index() == 1);
    CHECK(log->last_index() == 0);
    CHECK(log->term(0).value() == 0);
    CHECK(log->term(1).status().code() == Code::kNotFound);
    CHECK(log->entries(1, 1, 100)->empty());
    CHECK(log->entries(1, 2, 100).status().code() == Code::kNotFound);
    CHECK(log->segment_count() == 0);
}

TEST_CASE("appended_entries_read_back_after_reopen") {
    TempDir d;
    {
        auto log = open_log(d.path());
        REQUIRE(log->append(make_batch(1, 10, 1, 100)).is_ok());
        REQUIRE(log->append(make_batch(11, 1, 2, 0)).is_ok());
        // Keyed data entries (entry type 4 on disk) keep their key and exactly their data.
        std::vector<Entry> b{{12, 2, raft::EntryType::kNoop, {}},
                             {13, 3, raft::EntryType::kConfig, raft::Payload("conf")},
                             {14, 3, raft::EntryType::kData, raft::Payload("keyed"), {7, 9}},
                             {15, 3, raft::EntryType::kData, {}, {~0ull, 1}}};
        REQUIRE(log->append(b).is_ok());
        CHECK(log->last_index() == 15);
    }
    auto log = open_log(d.path());
    CHECK_FALSE(log->recovery().torn_tail_cut);
    CHECK(log->first_index() == 1);
    CHECK(log->last_index() == 15);
    auto r = log->entries(1, 16, UINT64_MAX);
    REQUIRE(r.is_ok());
    REQUIRE(r->size() == 15);
    CHECK((*r)[13] == Entry{14, 3, raft::EntryType::kData, raft::Payload("keyed"), {7, 9}});
    CHECK((*r)[14] == Entry{15, 3, raft::EntryType::kData, {}, {~0ull, 1}});
    for (Index i = 1; i <= 10; i++)
        CHECK((*r)[i - 1] == make_entry(i, 1, 100));
    CHECK((*r)[10] == make_entry(11, 2, 0));
    CHECK((*r)[11].type == raft::EntryType::kNoop);
    CHECK((*r)[12].type == raft::EntryType::kConfig);
    CHECK((*r)[12].data.view() == "conf");
    CHECK(log->term(10).value() == 1);
    CHECK(log->term(13).value() == 3);
}

TEST_CASE("each_appended_batch_costs_one_sync_whatever_its_size") {
    TempDir d;
    auto log = open_log(d.path());
    // The first append creates the segment (its own syncs); count from after it.
    REQUIRE(log->append(make_batch(1, 1, 1, 10)).is_ok());
    const uint64_t base = log->syncs();
    CHECK(base >= 1);
    REQUIRE(log->append(make_batch(2, 1, 1, 10)).is_ok());
    REQUIRE(log->append(make_batch(3, 64, 1, 10)).is_ok());
    REQUIRE(log->append(make_batch(67, 256, 1, 10)).is_ok());
    CHECK(log->syncs() == base + 3);
}

TEST_CASE("segments_roll_over_and_are_named_by_first_index") {
    TempDir d;
    auto log = open_log(d.path(), small_segments());
    Index next = 1;
    for (int b = 0; b < 20; b++) {
        REQUIRE(log->append(make_batch(next, 5, 1, 200)).is_ok());
        next += 5;
    }
    CHECK(log->segment_count() > 4);
    CHECK(std::filesystem::exists(d.sub(segment_name(1))));
    // Every file name equals the first index its header declares and reading matches.
    for (auto& de : std::filesystem::directory_iterator(d.path())) {
        auto idx = parse_segment_name(de.path().filename().string());
        REQUIRE(idx.has_value());
        CHECK((*idx - 1) % 5 == 0);  // batches never straddle segments
    }
    check_all(*log, 1, 100, 200);
    log.reset();
    auto again = open_log(d.path(), small_segments());
    check_all(*again, 1, 100, 200);
}

TEST_CASE("random_access_reads_any_range_across_segments") {
    TempDir d;
    auto log = open_log(d.path(), small_segments());
    std::mt19937_64 rng(7);
    Index next = 1;
    std::vector<size_t> lens{0};
    while (next <= 300) {
        size_t n = 1 + rng() % 8;
        std::vector<Entry> b;
        for (size_t k = 0; k < n; k++, next++) {
            lens.push_back(rng() % 300);
            b.push_back(make_entry(next, 1 + next / 50, lens.back()));
        }
        REQUIRE(log->append(b).is_ok());
    }
    const Index last = next - 1;
    for (int q = 0; q < 500; q++) {
        Index lo = 1 + rng() % last;
        Index hi = lo + rng() % (last + 2 - lo);
        auto r = log->entries(lo, hi, UINT64_MAX);
        REQUIRE(r.is_ok());
        REQUIRE(r->size() == hi - lo);
        for (Index i = lo; i < hi; i++) {
            CHECK((*r)[i - lo] == make_entry(i, 1 + i / 50, lens[i]));
        }
        Index t = rng() % (last + 1);
        CHECK(log->term(t).value() == (t == 0 ? 0 : 1 + t / 50));
    }
}

TEST_CASE("entries_stop_at_max_bytes_but_return_at_least_one") {
    TempDir d;
    for (uint64_t cache : {uint64_t{0}, uint64_t{1} << 20}) {
        SegmentedLogOptions o = small_segments();
        o.cache_bytes = cache;
        auto log = open_log(d.sub(std::to_string(cache)), o);
        REQUIRE(log->append(make_batch(1, 40, 1, 76)).is_ok());  // byte_size() == 100 each
        CHECK(log->entries(1, 41, 0)->size() == 1);
        CHECK(log->entries(1, 41, 99)->size() == 1);
        CHECK(log->entries(1, 41, 100)->size() == 1);
        CHECK(log->entries(1, 41, 250)->size() == 2);
        CHECK(log->entries(3, 41, 1000)->size() == 10);
        CHECK(log->entries(3, 41, 1000)->front().index == 3);
        CHECK(log->entries(1, 41, UINT64_MAX)->size() == 40);
    }
}

TEST_CASE("reads_outside_the_log_follow_the_storage_contract") {
    TempDir d;
    auto log = open_log(d.path());
    REQUIRE(log->append(make_batch(1, 5, 2, 10)).is_ok());
    CHECK(log->entries(0, 3, 100).status().code() == Code::kCompacted);
    CHECK(log->entries(1, 7, 100).status().code() == Code::kNotFound);
    CHECK(log->entries(6, 6, 100)->empty());
    CHECK(log->term(6).status().code() == Code::kNotFound);
    CHECK(log->term(5).value() == 2);
}

TEST_CASE("append_rejects_gaps_bad_indexes_and_falling_terms_without_failing") {
    TempDir d;
    auto log = open_log(d.path());
    REQUIRE(log->append(make_batch(1, 3, 5, 10)).is_ok());
    CHECK(log->append(make_batch(5, 1, 5, 10)).code() == Code::kInvalidArgument);  // gap
    auto holes = make_batch(4, 3, 5, 10);
    holes[2].index = 9;
    CHECK(log->append(holes).code() == Code::kInvalidArgument);
    CHECK(log->append(make_batch(4, 1, 4, 10)).code() == Code::kInvalidArgument);  // term falls
    CHECK(log->append(make_batch(4, 1, 0, 10)).code() == Code::kInvalidArgument);
    CHECK(log->append({}).is_ok());
    CHECK(log->failure().is_ok());
    CHECK(log->last_index() == 3);
    REQUIRE(log->append(make_batch(4, 1, 6, 10)).is_ok());
    CHECK(log->last_index() == 4);
}

TEST_CASE("reads_near_the_tail_are_served_from_the_cache") {
    TempDir d;
    SegmentedLogOptions o;
    o.segment_bytes = 64 * 1024;
    o.cache_bytes = 50 * 124;  // room for the last 50 entries of 100 data bytes
    auto log = open_log(d.path(), o);
    for (Index i = 1; i <= 200; i += 10)
        REQUIRE(log->append(make_batch(i, 10, 1, 100)).is_ok());
    const uint64_t before = log->disk_reads();
    auto r = log->entries(160, 201, UINT64_MAX);
    REQUIRE(r.is_ok());
    CHECK(r->size() == 41);
    CHECK(log->disk_reads() == before);
    auto old = log->entries(100, 161, UINT64_MAX);  // spans disk and cache
    REQUIRE(old.is_ok());
    CHECK(old->size() == 61);
    CHECK(log->disk_reads() == before + 1);
    for (Index i = 100; i <= 160; i++)
        CHECK((*old)[i - 100] == make_entry(i, 1, 100));

    // The cache is warmed on open, so a restarted node also serves its tail from memory.
    log.reset();
    auto again = open_log(d.path(), o);
    auto r2 = again->entries(160, 201, UINT64_MAX);
    REQUIRE(r2.is_ok());
    CHECK(again->disk_reads() == 1);  // the one warm-up read at open
    CHECK((*r2)[0] == make_entry(160, 1, 100));
}

TEST_CASE("segment_bytes_match_the_documented_example") {
    // docs/wal-format.md, section 4: a noop at 1 and "hello" at 2, both term 1, written in
    // one batch with commit 1.
    TempDir d;
    SegmentedLogOptions o;
    o.preallocate = false;
    {
        auto log = SegmentedLog::open(Env::posix(), d.path(), o);
        REQUIRE(log.is_ok());
        std::vector<Entry> batch{Entry{1, 1, raft::EntryType::kNoop, raft::Payload()},
                                 Entry{2, 1, raft::EntryType::kData, raft::Payload("hello")}};
        REQUIRE((*log)->append(batch, 1).is_ok());
    }
    std::ifstream in(d.path() + "/00000000000000000001.log", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string hex;
    for (unsigned char c : bytes) {
        static const char* digits = "0123456789abcdef";
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    CHECK(bytes.size() == 106);
    CHECK(hex ==
          "726166746477616c0200000001000000000000000000000000000000c9845bd5"
          "11000000011493160a0100000000000000010000000000000002160000000157"
          "575f6d020000000000000001000000000000000168656c6c6f08000000024ab8"
          "013e0100000000000000");
}
