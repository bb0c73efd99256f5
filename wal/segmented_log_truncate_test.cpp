// Suffix truncation, prefix compaction and reset of wal::SegmentedLog, at segment boundaries, on an
// empty log and after a snapshot, each checked again after reopening.
#include <doctest/doctest.h>

#include <filesystem>

#include "wal/segmented_log.h"
#include "wal/testing/util.h"

using namespace raftd;
using namespace raftd::wal;
using namespace raftd::wal::testing;
using raft::Entry;

namespace {

// 5 entries of 200 data bytes (1130 bytes) per batch, 3 batches per 4 KiB segment.
SegmentedLogOptions opts(uint64_t cache = 0, uint64_t keep = 0) {
    SegmentedLogOptions o;
    o.segment_bytes = 4096;
    o.cache_bytes = cache;
    o.compact_keep_entries = keep;
    return o;
}

std::unique_ptr<SegmentedLog> open_log(const std::string& dir, const SegmentedLogOptions& o) {
    auto r = SegmentedLog::open(Env::posix(), dir, o);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    return std::move(r.value());
}

void fill(SegmentedLog& log, Index first, Index last, raft::Term t, uint64_t salt = 0) {
    for (Index i = first; i <= last; i += 5) {
        Index n = std::min<Index>(5, last + 1 - i);
        REQUIRE(log.append(make_batch(i, n, t, 200, salt)).is_ok());
    }
}

// Entries [first, last] must be exactly `want(i)`.
template <typename F>
void expect_log(const SegmentedLog& log, Index first, Index last, F want) {
    REQUIRE(log.first_index() == first);
    REQUIRE(log.last_index() == last);
    if (last < first) return;
    auto r = log.entries(first, last + 1, UINT64_MAX);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    REQUIRE(r->size() == last + 1 - first);
    for (Index i = first; i <= last; i++)
        CHECK((*r)[i - first] == want(i));
}

}  // namespace

TEST_CASE("append_at_an_existing_index_replaces_the_conflicting_tail") {
    for (uint64_t cache : {uint64_t{0}, uint64_t{1} << 20}) {
        TempDir d;
        auto log = open_log(d.path(), opts(cache));
        fill(*log, 1, 12, 1);
        REQUIRE(log->append(make_batch(8, 2, 2, 200, 9)).is_ok());
        auto want = [](Index i) {
            return i < 8 ? make_entry(i, 1, 200) : make_entry(i, 2, 200, 9);
        };
        expect_log(*log, 1, 9, want);
        log.reset();
        auto again = open_log(d.path(), opts(cache));
        expect_log(*again, 1, 9, want);
        REQUIRE(again->append(make_batch(10, 1, 2, 200, 9)).is_ok());
        CHECK(again->term(10).value() == 2);
    }
}

TEST_CASE("truncation_at_and_across_segment_boundaries_survives_reopen") {
    // Segments start at 1, 16, 31, 46 (15 entries each).
    for (Index from : {Index{16}, Index{17}, Index{15}, Index{31}, Index{2}, Index{1}, Index{60}}) {
        CAPTURE(from);
        TempDir d;
        auto log = open_log(d.path(), opts());
        fill(*log, 1, 60, 1);
        REQUIRE(log->segment_count() == 4);
        REQUIRE(log->truncate_suffix(from).is_ok());
        expect_log(*log, 1, from - 1, [](Index i) { return make_entry(i, 1, 200); });
        log.reset();
        auto again = open_log(d.path(), opts());
        CHECK_FALSE(again->recovery().torn_tail_cut);
        expect_log(*again, 1, from - 1, [](Index i) { return make_entry(i, 1, 200); });
        // The log continues at `from` with new content, across a further roll-over.
        fill(*again, from, from + 20, 3, 5);
        auto want = [from](Index i) {
            return i < from ? make_entry(i, 1, 200) : make_entry(i, 3, 200, 5);
        };
        expect_log(*again, 1, from + 20, want);
        again.reset();
        expect_log(*open_log(d.path(), opts()), 1, from + 20, want);
    }
}

TEST_CASE("truncate_beyond_the_end_is_a_no_op_and_below_the_start_is_refused") {
    TempDir d;
    auto log = open_log(d.path(), opts());
    CHECK(log->truncate_suffix(1).is_ok());  // empty log
    fill(*log, 1, 10, 1);
    CHECK(log->truncate_suffix(11).is_ok());
    CHECK(log->last_index() == 10);
    CHECK(log->truncate_suffix(0).code() == Code::kInvalidArgument);
    CHECK(log->failure().is_ok());
}

TEST_CASE("compaction_drops_whole_segments_and_keeps_the_newest") {
    TempDir d;
    auto log = open_log(d.path(), opts());
    fill(*log, 1, 60, 1);
    fill(*log, 61, 70, 2);
    REQUIRE(log->segment_count() == 5);  // 1, 16, 31, 46, 61
    REQUIRE(log->compact(20).is_ok());   // only [1,15] is wholly below 20
    CHECK(log->first_index() == 16);
    CHECK(log->term(15).value() == 1);  // from the segment header's prev_term
    CHECK(log->term(14).status().code() == Code::kCompacted);
    CHECK(log->entries(15, 17, UINT64_MAX).status().code() == Code::kCompacted);
    REQUIRE(log->compact(70).is_ok());  // everything but the newest segment
    CHECK(log->first_index() == 61);
    CHECK(log->term(60).value() == 1);
    CHECK(log->term(61).value() == 2);
    CHECK(log->compact(71).code() == Code::kInvalidArgument);
    log.reset();
    auto again = open_log(d.path(), opts());
    expect_log(*again, 61, 70, [](Index i) { return make_entry(i, 2, 200); });
    CHECK(again->term(60).value() == 1);
}

TEST_CASE("compaction_keeps_the_configured_tail_below_the_snapshot") {
    TempDir d;
    auto log = open_log(d.path(), opts(0, 20));
    fill(*log, 1, 60, 1);
    REQUIRE(log->compact(49).is_ok());  // limit 29: only [1,15] goes; [16,30] holds 30
    CHECK(log->first_index() == 16);
    REQUIRE(log->compact(50).is_ok());  // limit 30: [16,30] goes too
    CHECK(log->first_index() == 31);
}

TEST_CASE("compaction_of_an_empty_log_changes_nothing") {
    TempDir d;
    auto log = open_log(d.path(), opts());
    CHECK(log->compact(0).is_ok());
    CHECK(log->first_index() == 1);
    CHECK(log->last_index() == 0);
}

TEST_CASE("reset_after_a_snapshot_restarts_the_log_behind_it") {
    TempDir d;
    {
        auto log = open_log(d.path(), opts(1 << 20));
        fill(*log, 1, 40, 1);
        REQUIRE(log->reset(100, 7).is_ok());
        CHECK(log->first_index() == 101);
        CHECK(log->last_index() == 100);
        CHECK(log->term(100).value() == 7);
        CHECK(log->entries(101, 101, 10)->empty());
        CHECK(log->entries(40, 41, 10).status().code() == Code::kCompacted);
        CHECK(log->append(make_batch(102, 1, 7, 10)).code() == Code::kInvalidArgument);
    }
    {
        auto log = open_log(d.path(), opts(1 << 20));
        CHECK(log->first_index() == 101);
        CHECK(log->last_index() == 100);
        CHECK(log->term(100).value() == 7);
        CHECK(log->segment_count() == 1);
        fill(*log, 101, 130, 8);
        // Truncating back to the snapshot boundary leaves the header-only segment.
        REQUIRE(log->truncate_suffix(101).is_ok());
        CHECK(log->last_index() == 100);
        fill(*log, 101, 110, 9);
        REQUIRE(log->compact(110).is_ok());
    }
    auto log = open_log(d.path(), opts());
    expect_log(*log, 101, 110, [](Index i) { return make_entry(i, 9, 200); });
    CHECK(log->term(100).value() == 7);
}

TEST_CASE("a_commit_record_survives_the_truncation_of_the_batch_it_ended") {
    // The commit written with entries 6..8 says 5. Cutting 7..8 (a new leader's conflicting
    // tail) must not take that knowledge with it: a crash before the replacement batch is
    // durable would otherwise bring the node back with commit 3 (and, were 4..5 config
    // entries, with an older membership).
    TempDir d;
    {
        auto log = open_log(d.path(), opts());
        REQUIRE(log->append(make_batch(1, 5, 1, 200), 3).is_ok());
        REQUIRE(log->append(make_batch(6, 3, 1, 200), 5).is_ok());
        CHECK(log->durable_commit() == 5);
        REQUIRE(log->truncate_suffix(7).is_ok());
        CHECK(log->durable_commit() == 5);
    }
    auto log = open_log(d.path(), opts());
    CHECK(log->durable_commit() == 5);
    expect_log(*log, 1, 6, [](Index i) { return make_entry(i, 1, 200); });
}

TEST_CASE("a_commit_record_survives_cuts_that_remove_or_empty_segments") {
    // Segments hold 15 entries here: [1, 15], [16, 30], [31, 45]. The only commit record
    // ends the batch at 41; cutting from 31 empties the last segment, from 30 removes it.
    for (Index from : {Index{31}, Index{30}}) {
        CAPTURE(from);
        TempDir d;
        {
            auto log = open_log(d.path(), opts());
            fill(*log, 1, 40, 1);
            REQUIRE(log->append(make_batch(41, 1, 1, 200), 29).is_ok());
            REQUIRE(log->segment_count() == 3);
            REQUIRE(log->truncate_suffix(from).is_ok());
        }
        auto log = open_log(d.path(), opts());
        CHECK(log->durable_commit() == 29);
        expect_log(*log, 1, from - 1, [](Index i) { return make_entry(i, 1, 200); });
        REQUIRE(log->append(make_batch(from, 2, 2, 200), 29).is_ok());
        CHECK(log->term(from + 1).value() == 2);
    }
}

TEST_CASE("truncating_a_committed_entry_is_refused_and_changes_nothing") {
    TempDir d;
    auto log = open_log(d.path(), opts());
    REQUIRE(log->append(make_batch(1, 5, 1, 200), 4).is_ok());
    auto st = log->truncate_suffix(4);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("committed") != std::string::npos);
    st = log->append(make_batch(3, 1, 2, 200));
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(log->failure().is_ok());
    expect_log(*log, 1, 5, [](Index i) { return make_entry(i, 1, 200); });
    REQUIRE(log->truncate_suffix(5).is_ok());
    CHECK(log->last_index() == 4);
}

TEST_CASE("config_entries_are_indexed_through_appends_truncation_reopen_and_compaction") {
    auto cfg = [](Index i, raft::Term t) {
        return Entry{i, t, raft::EntryType::kConfig, raft::Payload("c" + std::to_string(i))};
    };
    auto indexes = [](const SegmentedLog& log, Index lo, Index hi) {
        auto r = log.config_entries(lo, hi);
        REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
        std::vector<Index> v;
        for (const Entry& e : *r) {
            CHECK(e.type == raft::EntryType::kConfig);
            CHECK(e == Entry{e.index, e.term, raft::EntryType::kConfig,
                             raft::Payload("c" + std::to_string(e.index))});
            v.push_back(e.index);
        }
        return v;
    };
    TempDir d;
    auto log = open_log(d.path(), opts());
    // Config entries at 3, 20 and 33 among data entries, across three segments.
    for (Index i = 1; i <= 40; i += 5) {
        auto batch = make_batch(i, 5, 1, 200);
        for (auto& e : batch)
            if (e.index == 3 || e.index == 20 || e.index == 33) e = cfg(e.index, 1);
        REQUIRE(log->append(batch).is_ok());
    }
    CHECK(indexes(*log, 1, 41) == std::vector<Index>{3, 20, 33});
    CHECK(indexes(*log, 4, 33) == std::vector<Index>{20});
    // A new leader replaces 30.. with entries that hold a config entry at 31.
    REQUIRE(log->append(std::vector<Entry>{make_entry(30, 2, 200), cfg(31, 2)}).is_ok());
    CHECK(indexes(*log, 1, 32) == std::vector<Index>{3, 20, 31});
    log.reset();
    log = open_log(d.path(), opts());
    CHECK(indexes(*log, 1, 32) == std::vector<Index>{3, 20, 31});
    REQUIRE(log->compact(25).is_ok());  // drops the segment [1, 15]
    CHECK(log->first_index() == 16);
    CHECK(indexes(*log, 16, 32) == std::vector<Index>{20, 31});
    CHECK(log->config_entries(1, 32).status().code() == Code::kCompacted);
    CHECK(log->config_entries(16, 40).status().code() == Code::kNotFound);
}
