// DiskStorage: identity, restart round trips, hard state, configuration recovery,
// snapshots (install, save+compact, crash leftovers, corruption) and reads racing writes.
#include "wal/disk_storage.h"

#include <doctest/doctest.h>
#include <leveldb/db.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "raft/confchange_codec.h"
#include "raft/node.h"
#include "wal/crc32c.h"
#include "wal/snapshot_file.h"
#include "wal/testing/fault_env.h"
#include "wal/testing/util.h"

using namespace raftd;
using namespace raftd::wal;
using namespace raftd::wal::testing;
using raft::Entry;
using raft::HardState;
using raft::SnapshotMeta;

namespace {

DiskStorageOptions opts(const std::string& cluster = "c1", uint64_t node = 1) {
    DiskStorageOptions o;
    o.cluster_id = cluster;
    o.node_id = node;
    o.log.segment_bytes = 8192;
    o.log.preallocate = false;
    return o;
}

std::unique_ptr<DiskStorage> open_ok(const std::string& dir, DiskStorageOptions o = opts(),
                                     Env* env = Env::posix()) {
    auto r = DiskStorage::open(env, dir, o);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    return std::move(r.value());
}

// Opens `dir` expecting a refusal whose text names the data dir and holds `what`.
void expect_open_refused(const std::string& dir, const std::string& what,
                         Code code = Code::kCorruption) {
    auto r = DiskStorage::open(Env::posix(), dir, opts());
    REQUIRE_FALSE(r.is_ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == code);
    CHECK(r.status().to_string().find(dir) != std::string::npos);
    CHECK(r.status().to_string().find(what) != std::string::npos);
}

// A raft node loaded from the storage: what raft says of the state it finds there.
Status load_node(DiskStorage& s) {
    raft::Config cfg;
    cfg.id = 1;
    cfg.applied = 1;
    auto n = raft::Node::create(cfg, s, &s);
    return n.is_ok() ? Status::ok() : n.status();
}

std::string snapshot_bytes(size_t n, uint64_t salt = 7) {
    return entry_data(0, n, salt);
}

// Writes `data` as the snapshot for meta in chunks of 1000 bytes and commits it.
void write_snapshot(DiskStorage& s, const SnapshotMeta& meta, const std::string& data) {
    auto w = s.begin_snapshot(meta);
    REQUIRE_MESSAGE(w.is_ok(), w.status().to_string());
    for (size_t off = 0; off < data.size(); off += 1000)
        REQUIRE((*w)->write(off, std::string_view(data).substr(off, 1000)).is_ok());
    REQUIRE((*w)->commit().is_ok());
}

std::string read_whole_snapshot(const DiskStorage& s, Index index) {
    std::string out;
    for (;;) {
        auto r = s.read_snapshot(index, out.size(), 777);
        REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
        out += r->data;
        if (r->done) return out;
        REQUIRE(!r->data.empty());
    }
}

raft::ConfState voters(std::vector<raft::NodeId> ids) {
    raft::ConfState cs;
    for (auto id : ids) {
        cs.voters.push_back(id);
        cs.addrs.push_back({id, "h" + std::to_string(id) + ":1"});
    }
    return cs;
}

Entry config_entry(Index i, raft::Term t, raft::ConfChangeType type, raft::NodeId node) {
    raft::ConfChange cc;
    cc.changes.push_back({type, node, "h" + std::to_string(node) + ":1"});
    return Entry{i, t, raft::EntryType::kConfig, raft::Payload(raft::encode_conf_change(cc))};
}

size_t count_files(const std::string& dir, const std::string& suffix) {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().ends_with(suffix)) n++;
    return n;
}

}  // namespace

TEST_CASE("fresh_data_dir_is_empty_and_records_its_identity") {
    TempDir d;
    {
        auto s = open_ok(d.path());
        CHECK(s->first_index() == 1);
        CHECK(s->last_index() == 0);
        CHECK(s->snapshot_meta().index == 0);
        CHECK(s->initial_state().hard.empty());
        CHECK(std::filesystem::is_directory(d.sub("wal")));
        CHECK(std::filesystem::is_directory(d.sub("meta")));
        CHECK(std::filesystem::is_directory(d.sub("snap")));
    }
    auto s = open_ok(d.path());  // same identity reopens
    CHECK(s->last_index() == 0);
}

TEST_CASE("data_dir_of_another_cluster_or_node_is_refused_with_one_clear_line") {
    TempDir d;
    { open_ok(d.path()); }
    auto r = DiskStorage::open(Env::posix(), d.path(), opts("c2", 1));
    REQUIRE_FALSE(r.is_ok());
    std::string m = r.status().to_string();
    CHECK(m.find(d.path()) != std::string::npos);
    CHECK(m.find("cluster 'c1', not 'c2'") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);

    r = DiskStorage::open(Env::posix(), d.path(), opts("c1", 2));
    REQUIRE_FALSE(r.is_ok());
    m = r.status().to_string();
    CHECK(m.find(d.path()) != std::string::npos);
    CHECK(m.find("node 1, not node 2") != std::string::npos);
}

TEST_CASE("data_dir_of_an_unknown_format_version_is_refused") {
    TempDir d;
    { open_ok(d.path()); }
    {
        leveldb::DB* raw = nullptr;
        REQUIRE(leveldb::DB::Open(leveldb::Options(), d.sub("meta"), &raw).ok());
        std::unique_ptr<leveldb::DB> db(raw);
        std::string v("\x07\0\0\0", 4);
        REQUIRE(db->Put(leveldb::WriteOptions(), "format_version", v).ok());
    }
    auto r = DiskStorage::open(Env::posix(), d.path(), opts());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().to_string().find("format version 7 is not supported") != std::string::npos);
    CHECK(r.status().to_string().find(d.path()) != std::string::npos);
}

TEST_CASE("a_log_without_identity_is_not_adopted") {
    TempDir d;
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(make_batch(1, 3, 1, 10), std::nullopt).is_ok());
    }
    std::filesystem::remove_all(d.sub("meta"));
    auto r = DiskStorage::open(Env::posix(), d.path(), opts());
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("no identity") != std::string::npos);
}

TEST_CASE("entries_and_hard_state_survive_a_restart") {
    TempDir d;
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(make_batch(1, 50, 1, 100), HardState{1, 1, 0}).is_ok());
        REQUIRE(s->persist(make_batch(51, 50, 2, 100), HardState{2, 3, 40}).is_ok());
        REQUIRE(s->persist({}, HardState{2, 3, 90}).is_ok());  // commit only: unsynced write
        // A conflicting suffix from a new leader replaces 91..100.
        REQUIRE(s->persist(make_batch(91, 5, 3, 50, 1), HardState{3, 0, 90}).is_ok());
        CHECK(s->last_index() == 95);
    }
    auto s = open_ok(d.path());
    CHECK(s->initial_state().hard == HardState{3, 0, 90});
    CHECK(s->first_index() == 1);
    CHECK(s->last_index() == 95);
    auto ents = s->entries(1, 96, UINT64_MAX);
    REQUIRE(ents.is_ok());
    REQUIRE(ents->size() == 95);
    CHECK((*ents)[0] == make_entry(1, 1, 100));
    CHECK((*ents)[89] == make_entry(90, 2, 100));
    CHECK((*ents)[90] == make_entry(91, 3, 50, 1));
    CHECK(s->term(95).value() == 3);
    CHECK(s->term(96).status().code() == Code::kNotFound);
}

TEST_CASE("initial_state_replays_committed_config_entries_after_the_snapshot") {
    TempDir d;
    std::vector<Entry> ents;
    ents.push_back(raft::bootstrap_entry({{1, "h1:1"}, {2, "h2:1"}, {3, "h3:1"}}));
    ents.push_back(make_entry(2, 1, 10));
    ents.push_back(config_entry(3, 1, raft::ConfChangeType::kAddLearner, 4));
    ents.push_back(config_entry(4, 1, raft::ConfChangeType::kAddNode, 4));  // promote 4
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(ents, HardState{1, 0, 3}).is_ok());
    }
    {
        // Committed up to 3: the promotion at 4 is not part of the recovered configuration.
        auto s = open_ok(d.path());
        raft::ConfState cs = s->initial_state().conf;
        CHECK(cs.voters == std::vector<raft::NodeId>{1, 2, 3});
        CHECK(cs.learners == std::vector<raft::NodeId>{4});
        REQUIRE(s->persist({}, HardState{1, 0, 4}).is_ok());
    }
    {
        auto s = open_ok(d.path());
        raft::ConfState cs = s->initial_state().conf;
        CHECK(cs.voters == std::vector<raft::NodeId>{1, 2, 3, 4});
        CHECK(cs.learners.empty());
        CHECK(raft::address_of(cs, 4) == "h4:1");
        // A snapshot at 2 (conf of voters 1..3) replaces the bootstrap entry's part.
        SnapshotMeta m{2, 1, voters({1, 2, 3})};
        write_snapshot(*s, m, "app state");
        REQUIRE(s->save_snapshot_and_compact(m).is_ok());
    }
    auto s = open_ok(d.path());
    CHECK(s->snapshot_meta() == SnapshotMeta{2, 1, voters({1, 2, 3})});
    raft::ConfState cs = s->initial_state().conf;
    CHECK(cs.voters == std::vector<raft::NodeId>{1, 2, 3, 4});
}

TEST_CASE("a_node_restores_from_durable_storage") {
    TempDir d;
    {
        auto s = open_ok(d.path());
        std::vector<Entry> boot{raft::bootstrap_entry({{1, "h1:1"}})};
        REQUIRE(s->persist(boot, HardState{1, 0, 1}).is_ok());
    }
    auto s = open_ok(d.path());
    raft::Config cfg;
    cfg.id = 1;
    cfg.applied = 1;  // raft replays config entries up to what the application applied
    auto n = raft::Node::create(cfg, *s, s.get());
    REQUIRE_MESSAGE(n.is_ok(), n.status().to_string());
    CHECK((*n)->conf_state().voters == std::vector<raft::NodeId>{1});
}

TEST_CASE("leader_snapshot_is_saved_read_back_in_chunks_and_compacts_the_log") {
    TempDir d;
    const std::string data = snapshot_bytes(10'000);
    DiskStorageOptions o = opts();
    {
        auto s = open_ok(d.path(), o);
        for (Index i = 1; i <= 200; i += 20)
            REQUIRE(s->persist(make_batch(i, 20, 1, 100), HardState{1, 1, i + 19}).is_ok());
        const size_t segs_before = s->log().segment_count();
        REQUIRE(segs_before > 2);
        SnapshotMeta m{150, 1, voters({1, 2, 3})};
        write_snapshot(*s, m, data);
        REQUIRE(s->save_snapshot_and_compact(m).is_ok());
        CHECK(s->snapshot_meta() == m);
        CHECK(s->log().segment_count() < segs_before);
        CHECK(s->first_index() <= 151);
        CHECK(s->first_index() > 1);
        CHECK(s->term(s->first_index() - 1).is_ok());
        CHECK(read_whole_snapshot(*s, 150) == data);
    }
    auto s = open_ok(d.path(), o);
    CHECK(s->snapshot_meta().index == 150);
    CHECK(s->last_index() == 200);
    CHECK(read_whole_snapshot(*s, 150) == data);
    CHECK(s->read_snapshot(149, 0, 10).status().code() == Code::kNotFound);
    CHECK(s->read_snapshot(150, data.size() + 1, 10).status().code() == Code::kInvalidArgument);
    auto end = s->read_snapshot(150, data.size(), 10);
    REQUIRE(end.is_ok());
    CHECK(end->done);
    CHECK(end->data.empty());
    CHECK(count_files(d.sub("snap"), ".snap") == 1);
}

TEST_CASE("snapshot_must_match_the_log_and_be_committed_first") {
    TempDir d;
    auto s = open_ok(d.path());
    REQUIRE(s->persist(make_batch(1, 10, 2, 10), std::nullopt).is_ok());
    SnapshotMeta m{5, 2, voters({1})};
    // Not committed through a writer.
    CHECK(s->save_snapshot_and_compact(m).code() == Code::kInvalidArgument);
    CHECK(s->install_snapshot(m).code() == Code::kInvalidArgument);
    // Wrong term for the log.
    SnapshotMeta bad{5, 1, voters({1})};
    write_snapshot(*s, bad, "x");
    CHECK(s->save_snapshot_and_compact(bad).code() == Code::kInvalidArgument);
    // Beyond the log.
    SnapshotMeta beyond{11, 2, voters({1})};
    write_snapshot(*s, beyond, "x");
    CHECK(s->save_snapshot_and_compact(beyond).code() == Code::kInvalidArgument);
    write_snapshot(*s, m, "ok");
    REQUIRE(s->save_snapshot_and_compact(m).is_ok());
    // Not newer than the current one.
    CHECK(s->begin_snapshot(m).status().code() == Code::kInvalidArgument);
    CHECK(s->failure().is_ok());  // refused input does not fail the storage
    // Out-of-order chunk.
    auto w = s->begin_snapshot({8, 2, voters({1})});
    REQUIRE(w.is_ok());
    CHECK((*w)->write(5, "abc").code() == Code::kInvalidArgument);
}

TEST_CASE("follower_install_replaces_the_log_and_keeps_the_old_snapshot_until_then") {
    TempDir d;
    const std::string old_data = snapshot_bytes(3000, 1), new_data = snapshot_bytes(5000, 2);
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(make_batch(1, 30, 1, 10), HardState{1, 2, 20}).is_ok());
        SnapshotMeta m1{10, 1, voters({1, 2})};
        write_snapshot(*s, m1, old_data);
        REQUIRE(s->save_snapshot_and_compact(m1).is_ok());

        SnapshotMeta m2{500, 4, voters({1, 2, 3})};
        write_snapshot(*s, m2, new_data);
        // Committed but not current: the old snapshot still serves and stays on disk.
        CHECK(s->snapshot_meta().index == 10);
        CHECK(read_whole_snapshot(*s, 10) == old_data);
        CHECK(count_files(d.sub("snap"), ".snap") == 2);
        REQUIRE(s->install_snapshot(m2).is_ok());
        CHECK(s->snapshot_meta() == m2);
        CHECK(s->first_index() == 501);
        CHECK(s->last_index() == 500);
        CHECK(s->term(500).value() == 4);
        CHECK(s->initial_state().hard == HardState{1, 2, 500});
        CHECK(count_files(d.sub("snap"), ".snap") == 1);
        REQUIRE(s->persist(make_batch(501, 5, 4, 10), HardState{4, 0, 503}).is_ok());
    }
    auto s = open_ok(d.path());
    CHECK(s->snapshot_meta().index == 500);
    CHECK(s->first_index() == 501);
    CHECK(s->last_index() == 505);
    CHECK(s->initial_state().hard == HardState{4, 0, 503});
    CHECK(s->initial_state().conf == voters({1, 2, 3}));
    CHECK(read_whole_snapshot(*s, 500) == new_data);
}

TEST_CASE("an_application_snapshot_overtaken_by_an_install_is_refused_and_removed") {
    TempDir d;
    auto s = open_ok(d.path());
    REQUIRE(s->persist(make_batch(1, 10, 1, 10), HardState{1, 0, 8}).is_ok());
    // The application starts a snapshot at 8 while a leader's snapshot at 50 arrives.
    auto app = s->begin_snapshot({8, 1, voters({1})});
    REQUIRE(app.is_ok());
    REQUIRE((*app)->write(0, "app").is_ok());
    write_snapshot(*s, {50, 2, voters({1})}, "leader");
    REQUIRE(s->install_snapshot({50, 2, voters({1})}).is_ok());
    REQUIRE((*app)->commit().is_ok());
    CHECK(s->save_snapshot_and_compact({8, 1, voters({1})}).code() == Code::kInvalidArgument);
    CHECK(s->failure().is_ok());
    CHECK(s->snapshot_meta().index == 50);
    CHECK(count_files(d.sub("snap"), ".snap") == 1);
    CHECK(read_whole_snapshot(*s, 50) == "leader");
}

TEST_CASE("leftover_temporary_and_uncommitted_snapshot_files_are_removed_on_open") {
    TempDir d;
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(make_batch(1, 10, 1, 10), std::nullopt).is_ok());
        SnapshotMeta m{5, 1, voters({1})};
        write_snapshot(*s, m, "current");
        REQUIRE(s->save_snapshot_and_compact(m).is_ok());
        // A writer that never committed (its destructor removes the file; simulate a crash
        // by leaving one behind), and a committed file that never became current.
        std::ofstream(d.sub("snap/" + snapshot_file_name(9, 1) + ".3.tmp")) << "partial";
        write_snapshot(*s, {8, 1, voters({1})}, "never current");
    }
    CHECK(count_files(d.sub("snap"), ".tmp") == 1);
    CHECK(count_files(d.sub("snap"), ".snap") == 2);
    auto s = open_ok(d.path());
    CHECK(count_files(d.sub("snap"), ".tmp") == 0);
    CHECK(count_files(d.sub("snap"), ".snap") == 1);
    CHECK(s->snapshot_meta().index == 5);
    CHECK(read_whole_snapshot(*s, 5) == "current");
    CHECK(s->open_notes().find("removed 2 stale") != std::string::npos);
}

TEST_CASE("abandoned_snapshot_writer_removes_its_temporary_file") {
    TempDir d;
    auto s = open_ok(d.path());
    {
        auto w = s->begin_snapshot({3, 1, voters({1})});
        REQUIRE(w.is_ok());
        REQUIRE((*w)->write(0, "half").is_ok());
        CHECK(count_files(d.sub("snap"), ".tmp") == 1);
    }
    CHECK(count_files(d.sub("snap"), ".tmp") == 0);
}

TEST_CASE("corrupt_or_missing_snapshot_file_is_refused_with_a_clear_error") {
    TempDir d;
    const std::string data = snapshot_bytes(4000);
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist(make_batch(1, 10, 1, 10), std::nullopt).is_ok());
        write_snapshot(*s, {6, 1, voters({1})}, data);
        REQUIRE(s->save_snapshot_and_compact({6, 1, voters({1})}).is_ok());
    }
    const std::string file = d.sub("snap/" + snapshot_file_name(6, 1));
    const std::string pristine = [&] {
        std::ifstream in(file, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    auto put = [&](const std::string& bytes) {
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    };
    auto refused = [&](const char* what) {
        auto r = DiskStorage::open(Env::posix(), d.path(), opts());
        REQUIRE_FALSE(r.is_ok());
        CHECK(r.status().code() == Code::kCorruption);
        std::string m = r.status().to_string();
        INFO(m);
        CHECK(m.find(snapshot_file_name(6, 1)) != std::string::npos);
        CHECK(m.find(what) != std::string::npos);
        CHECK(m.find(d.path()) != std::string::npos);
    };
    std::string flipped = pristine;
    flipped[kSnapHeaderSize + 1234] ^= 0x10;
    put(flipped);
    refused("data CRC mismatch");
    flipped = pristine;
    flipped[14] ^= 1;  // inside the header's index
    put(flipped);
    refused("header CRC mismatch");
    put(pristine.substr(0, pristine.size() - 3));
    refused("size");
    std::filesystem::remove(file);
    refused("cannot be opened");
    put(pristine);  // and the untouched file opens again
    auto s = open_ok(d.path());
    CHECK(read_whole_snapshot(*s, 6) == data);
}

TEST_CASE("a_log_that_lost_committed_entries_or_its_first_segment_is_refused_by_raft") {
    // Damage the log's own checks cannot see: a whole segment gone at either end, or the
    // last one cut at a record boundary. The storage opens; raft, loading from it, compares
    // the log with the commit and the snapshot and refuses (docs/wal-format.md, section 3).
    TempDir d;
    {
        auto s = open_ok(d.path());
        std::vector<Entry> boot{raft::bootstrap_entry({{1, "h1:1"}})};
        REQUIRE(s->persist(boot, HardState{1, 0, 1}).is_ok());
        for (Index i = 2; i <= 200; i += 20)
            REQUIRE(s->persist(make_batch(i, 20, 1, 100), HardState{1, 1, i - 1}).is_ok());
        REQUIRE(s->persist({}, HardState{1, 1, 200}).is_ok());  // commit only, as a follower
    }
    namespace fs = std::filesystem;
    const std::string wal = d.sub("wal");
    std::vector<std::string> segs;
    for (const auto& e : fs::directory_iterator(wal))
        segs.push_back(e.path().string());
    std::sort(segs.begin(), segs.end());
    REQUIRE(segs.size() >= 3);
    fs::copy(wal, d.sub("pristine"));
    auto restore = [&] {
        fs::remove_all(wal);
        fs::copy(d.sub("pristine"), wal);
    };
    auto load = [&] { return load_node(*open_ok(d.path())); };
    auto refused = [&](const std::string& what) {
        Status st = load();
        INFO(st.to_string());
        CHECK(st.code() == Code::kCorruption);
        CHECK(st.to_string().find(what) != std::string::npos);
    };
    fs::remove(segs.back());  // the newest segment
    refused("commit index 200 is beyond the last entry");
    restore();
    fs::resize_file(segs.back(), 32);  // the newest segment, cut to its header
    refused("commit index 200 is beyond the last entry");
    restore();
    fs::remove(segs.front());  // the oldest segment, with no snapshot to cover it
    refused("log starts after the snapshot");
    restore();
    Status st = load();
    CHECK_MESSAGE(st.is_ok(), st.to_string());
}

TEST_CASE("a_cut_end_of_the_last_segment_below_the_commit_is_refused_by_raft_under_load") {
    // Under load every batch carries the commit in the log and none goes to meta/ on its
    // own (the commit never runs ahead of the entries): a cut of the log's end takes the
    // commit records with it. meta/ gets the commit every kCommitEvidenceBytes, so a cut
    // deeper than that is refused, not taken for a torn tail.
    TempDir d;
    DiskStorageOptions o = opts();
    o.log.segment_bytes = 1 << 20;
    Index last = 1;
    {
        auto s = open_ok(d.path(), o);
        std::vector<Entry> boot{raft::bootstrap_entry({{1, "h1:1"}})};
        REQUIRE(s->persist(boot, HardState{1, 0, 1}).is_ok());
        for (int b = 0; b < 100; b++, last += 10)  // each batch commits the one before
            REQUIRE(s->persist(make_batch(last + 1, 10, 1, 100), HardState{1, 1, last}).is_ok());
    }
    const std::string seg = d.sub("wal/00000000000000000001.log");
    REQUIRE(file_size(seg) > 2 * kCommitEvidenceBytes + 32);
    std::filesystem::resize_file(seg, file_size(seg) - 2 * kCommitEvidenceBytes);
    auto s = open_ok(d.path(), o);  // the log cuts the torn record and opens
    CHECK(s->last_index() < last - 2 * kCommitEvidenceBytes / 200);
    Status st = load_node(*s);
    INFO(st.to_string());
    CHECK(st.code() == Code::kCorruption);
    CHECK(st.to_string().find("is beyond the last entry") != std::string::npos);
}

TEST_CASE("damaged_or_missing_metadata_files_are_refused") {
    // meta/ is LevelDB's: its own checks (paranoid_checks, verified reads) and the identity
    // check catch a flipped byte or a lost CURRENT, MANIFEST or table file; a lost log file
    // only our check of the MANIFEST's log number does (meta_check.h).
    TempDir d;
    for (uint64_t restart = 0; restart < 2; restart++) {  // the 2nd open moves keys to a table
        auto s = open_ok(d.path());
        // A new term each time: a synced write that lands in LevelDB's log file.
        REQUIRE(s->persist(make_batch(1 + restart * 10, 10, 1 + restart, 10),
                           HardState{1 + restart, 1, 5})
                    .is_ok());
    }
    namespace fs = std::filesystem;
    const std::string meta = d.sub("meta");
    fs::copy(meta, d.sub("pristine"));
    auto restore = [&] {
        fs::remove_all(meta);
        fs::copy(d.sub("pristine"), meta);
    };
    auto named = [&](const std::string& suffix) {
        for (const auto& e : fs::directory_iterator(meta)) {
            std::string n = e.path().filename().string();
            if (n.ends_with(suffix) || n.starts_with(suffix)) return e.path().string();
        }
        FAIL("no file " << suffix << " in meta/");
        return std::string();
    };
    auto refused = [&](const std::string& what) {
        INFO(what);
        expect_open_refused(d.path(), "meta/");
    };
    auto flip = [&](const std::string& file, uint64_t at) {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(at));
        char c = 0;
        f.get(c);
        f.seekp(static_cast<std::streamoff>(at));
        f.put(static_cast<char>(c ^ 0x20));
    };
    flip(named(".ldb"), 20);
    refused("a flipped byte in the table");
    restore();
    flip(named(".log"), 20);
    refused("a flipped byte in the log");
    restore();
    fs::remove(named(".ldb"));
    refused("a missing table");
    restore();
    fs::remove(named("MANIFEST-"));
    refused("a missing MANIFEST");
    restore();
    fs::remove(named("CURRENT"));
    refused("a missing CURRENT");
    restore();
    const std::string log = named(".log");
    fs::remove(log);
    expect_open_refused(d.path(), fs::path(log).filename().string() + ", the LevelDB log");
    restore();
    auto s = open_ok(d.path());
    CHECK(s->last_index() == 20);
}

TEST_CASE("damage_in_a_superseded_metadata_table_is_refused_on_open") {
    // Each open moves LevelDB's log into a new table: after four opens the second table
    // holds only a hard_state the third replaced, and no lookup reads it any more.
    TempDir d;
    for (uint64_t term = 1; term <= 3; term++) {
        auto s = open_ok(d.path());
        REQUIRE(s->persist({}, HardState{term, 1, 0}).is_ok());
    }
    namespace fs = std::filesystem;
    std::vector<std::string> tables;
    for (const auto& e : fs::directory_iterator(d.sub("meta")))
        if (e.path().extension() == ".ldb") tables.push_back(e.path().string());
    std::sort(tables.begin(), tables.end());
    REQUIRE(tables.size() >= 2);
    {
        std::fstream f(tables[1], std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(3);  // inside the first data block: the superseded hard_state
        f.put('\x7f');
    }
    expect_open_refused(d.path(), "meta/ verify");
}

TEST_CASE("install_interrupted_after_the_metadata_is_finished_on_open") {
    TempDir d;
    FaultEnv env(Env::posix());
    {
        auto s = open_ok(d.path(), opts(), &env);
        REQUIRE(s->persist(make_batch(1, 30, 1, 10), HardState{1, 0, 5}).is_ok());
        SnapshotMeta m{100, 3, voters({1, 2})};
        write_snapshot(*s, m, "leader state");
        // The log reset's first segment removal fails (as if the process died there).
        env.set_hook([](std::string_view op, const std::string& p) {
            return op == "remove" && p.ends_with(".log") ? EIO : 0;
        });
        Status st = s->install_snapshot(m);
        CHECK(st.code() == Code::kIoError);
        CHECK(s->failure().code() == Code::kIoError);
        CHECK(s->persist(make_batch(31, 1, 1, 10), std::nullopt).code() == Code::kIoError);
        env.set_hook(nullptr);
    }
    auto s = open_ok(d.path());
    CHECK(s->snapshot_meta().index == 100);
    CHECK(s->first_index() == 101);
    CHECK(s->last_index() == 100);
    CHECK(s->term(100).value() == 3);
    CHECK(s->initial_state().hard.commit == 100);
    CHECK(s->open_notes().find("interrupted snapshot install") != std::string::npos);
}

TEST_CASE("a_refused_batch_changes_nothing_and_does_not_fail_the_storage") {
    TempDir d;
    auto s = open_ok(d.path());
    REQUIRE(s->persist(make_batch(1, 5, 2, 10), HardState{2, 1, 3}).is_ok());
    CHECK(s->persist(make_batch(9, 2, 2, 10), HardState{2, 1, 9}).code() ==
          Code::kInvalidArgument);  // a gap
    CHECK(s->persist(make_batch(6, 2, 1, 10), std::nullopt).code() ==
          Code::kInvalidArgument);  // term back
    CHECK(s->failure().is_ok());
    CHECK(s->last_index() == 5);
    CHECK(s->initial_state().hard == HardState{2, 1, 3});
    CHECK(s->persist(make_batch(6, 2, 2, 10), std::nullopt).is_ok());
}

TEST_CASE("a_failed_log_write_fails_the_storage_for_good") {
    TempDir d;
    FaultEnv env(Env::posix());
    auto s = open_ok(d.path(), opts(), &env);
    REQUIRE(s->persist(make_batch(1, 5, 1, 10), HardState{1, 1, 0}).is_ok());
    env.set_hook(
        [](std::string_view op, const std::string&) { return op == "datasync" ? EIO : 0; });
    Status st = s->persist(make_batch(6, 5, 1, 10), HardState{1, 1, 5});
    CHECK(st.code() == Code::kIoError);
    CHECK(st.message().find("fdatasync") != std::string::npos);
    env.set_hook(nullptr);
    // Sticky: healthy disk or not, nothing more is accepted.
    CHECK(s->persist(make_batch(6, 5, 1, 10), std::nullopt).code() == Code::kIoError);
    CHECK(s->persist({}, HardState{2, 0, 0}).code() == Code::kIoError);
    CHECK(s->begin_snapshot({3, 1, voters({1})}).status().code() == Code::kIoError);
    CHECK(s->last_index() == 5);  // nothing unacknowledged became visible
    CHECK(s->initial_state().hard == HardState{1, 1, 0});
}

TEST_CASE("reads_from_another_thread_see_consistent_state_while_the_writer_works") {
    TempDir d;
    auto s = open_ok(d.path());
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0};
    std::thread reader([&] {
        while (!stop.load()) {
            // The log always continues from (or overlaps) the snapshot. Read first_index before
            // the snapshot: the snapshot only grows, so the check holds across the two reads.
            Index first = s->first_index();
            SnapshotMeta m = s->snapshot_meta();
            Index last = s->last_index();
            CHECK(first <= m.index + 1);
            if (last >= first) {
                auto e = s->entries(first, last + 1, 4096);
                if (e.is_ok()) {
                    CHECK(!e->empty());
                    CHECK((*e)[0].index == first);
                }
            }
            (void)s->initial_state();
            reads++;
        }
    });
    // Each round waits for a read that started after the previous one, so reads interleave
    // with the writes however the machine schedules the two threads.
    auto await_read = [&] {
        for (uint64_t seen = reads.load(); reads.load() < seen + 2;)
            std::this_thread::yield();
    };
    Index next = 1;
    for (int round = 0; round < 30; round++) {
        await_read();
        REQUIRE(s->persist(make_batch(next, 20, 1, 64), HardState{1, 1, next + 19}).is_ok());
        next += 20;
        if (round % 10 == 9) {
            SnapshotMeta m{next - 5, 1, voters({1})};
            write_snapshot(*s, m, "s" + std::to_string(round));
            REQUIRE(s->save_snapshot_and_compact(m).is_ok());
        }
    }
    await_read();
    stop = true;
    reader.join();
    CHECK(reads.load() >= 31);
}

TEST_CASE("snapshot_file_bytes_match_the_documented_example") {
    TempDir d;
    auto s = open_ok(d.path());
    REQUIRE(s->persist(make_batch(1, 5, 1, 10), std::nullopt).is_ok());
    write_snapshot(*s, {5, 1, voters({1})}, "hi");
    REQUIRE(s->save_snapshot_and_compact({5, 1, voters({1})}).is_ok());
    const std::string file = d.sub("snap/00000000000000000005-00000000000000000001.snap");
    std::ifstream in(file, std::ios::binary);
    std::string b(std::istreambuf_iterator<char>(in), {});
    REQUIRE(b.size() == 50);
    CHECK(b.substr(0, 8) == "raftsnap");
    CHECK(b.substr(8, 4) == std::string("\x01\0\0\0", 4));
    CHECK(b.substr(12, 8) == std::string("\x05\0\0\0\0\0\0\0", 8));
    CHECK(b.substr(20, 8) == std::string("\x01\0\0\0\0\0\0\0", 8));
    CHECK(b.substr(32, 2) == "hi");
    CHECK(b.substr(34, 8) == std::string("\x02\0\0\0\0\0\0\0", 8));
    raft::Index i = 0;
    raft::Term t = 0;
    CHECK(decode_snap_header(b.data(), &i, &t).is_ok());
    uint64_t n = 0;
    uint32_t crc = 0;
    CHECK(decode_snap_trailer(b.data() + 34, &n, &crc).is_ok());
    CHECK(n == 2);
    CHECK(crc == crc32c::value("hi", 2));
}

TEST_CASE("the_commit_known_when_entries_were_written_survives_losing_unsynced_metadata") {
    // Issue 13, bug 1, at the storage: {1,2,3} adds 4, then 5. The batch carrying "add 5"
    // arrives with a commit covering "add 4" (a commit-only hard state change). Power is
    // then lost: meta/'s unsynced writes are gone (modelled by putting back the last synced
    // hard state). The node must come back with voters {1,2,3,4}: with {1,2,3} and the log
    // holding both changes it could win an election with 2 of 5 voters.
    TempDir d;
    std::vector<Entry> ents;
    ents.push_back(raft::bootstrap_entry({{1, "h1:1"}, {2, "h2:1"}, {3, "h3:1"}}));
    ents.push_back(config_entry(2, 1, raft::ConfChangeType::kAddNode, 4));
    ents.push_back(config_entry(3, 1, raft::ConfChangeType::kAddNode, 5));
    {
        auto s = open_ok(d.path());
        REQUIRE(s->persist({ents.data(), 1}, HardState{1, 0, 1}).is_ok());  // synced: new term
        REQUIRE(s->persist({ents.data() + 1, 1}, HardState{1, 0, 1}).is_ok());
        REQUIRE(s->persist({ents.data() + 2, 1}, HardState{1, 0, 2}).is_ok());
        CHECK(s->initial_state().hard.commit == 2);
    }
    {
        leveldb::DB* raw = nullptr;
        REQUIRE(leveldb::DB::Open(leveldb::Options(), d.sub("meta"), &raw).ok());
        std::unique_ptr<leveldb::DB> db(raw);
        std::string hs(24, '\0');
        put_u64(hs.data(), 1);
        put_u64(hs.data() + 16, 1);
        REQUIRE(db->Put(leveldb::WriteOptions(), "hard_state", hs).ok());
    }
    auto s = open_ok(d.path());
    CHECK(s->initial_state().hard == HardState{1, 0, 2});
    CHECK(s->initial_state().conf.voters == std::vector<raft::NodeId>{1, 2, 3, 4});
}

TEST_CASE("a_commit_with_entries_costs_no_extra_sync_and_no_metadata_write") {
    TempDir d;
    auto s = open_ok(d.path());
    REQUIRE(s->persist(make_batch(1, 5, 1, 10), HardState{1, 1, 0}).is_ok());
    const uint64_t before = s->syncs();
    REQUIRE(s->persist(make_batch(6, 5, 1, 10), HardState{1, 1, 4}).is_ok());
    CHECK(s->syncs() == before + 1);  // the log's fdatasync covers the commit
    CHECK(s->log().durable_commit() == 4);
    CHECK(s->initial_state().hard == HardState{1, 1, 4});
}

namespace {
// Every Env call a FaultEnv sees, as "op path", in order.
struct OpRecorder {
    std::vector<std::string> ops;
    void attach(FaultEnv& env) {
        env.set_hook([this](std::string_view op, const std::string& p) {
            ops.push_back(std::string(op) + " " + p);
            return 0;
        });
    }
    // Position of the first `what` at or after `from`; ops.size() when absent.
    size_t find(const std::string& what, size_t from = 0) const {
        for (size_t i = from; i < ops.size(); i++)
            if (ops[i] == what) return i;
        return ops.size();
    }
};
}  // namespace

TEST_CASE("a_new_data_dir_and_its_subdirectories_are_synced_into_their_parents") {
    // A power cut must not take back a directory the node already wrote into: each new
    // entry is fsynced in its parent before anything inside is relied on.
    TempDir d;
    const std::string parent = d.sub("node"), dir = parent + "/data";
    FaultEnv env(Env::posix());
    OpRecorder rec;
    rec.attach(env);
    auto s = open_ok(dir, opts(), &env);
    env.set_hook(nullptr);
    const size_t made = rec.find("create_dirs " + dir);
    REQUIRE(made < rec.ops.size());
    CHECK(rec.find("sync_dir " + d.path(), made) < rec.ops.size());  // "node" in the tmp dir
    CHECK(rec.find("sync_dir " + parent, made) < rec.ops.size());    // "data" in "node"
    const size_t meta = rec.find("sync_dir " + dir + "/meta");
    CHECK(meta < rec.ops.size());                                 // LevelDB's files in meta/
    const size_t meta_entry = rec.find("sync_dir " + dir, meta);  // meta/ in the data dir
    CHECK(meta_entry < rec.ops.size());
    CHECK(rec.find("create_dirs " + dir + "/snap") < meta_entry);
    const size_t wal = rec.find("create_dirs " + dir + "/wal");
    REQUIRE(wal < rec.ops.size());
    CHECK(rec.find("sync_dir " + dir, wal) < rec.ops.size());  // wal/ in the data dir
}

TEST_CASE("a_data_dir_keeps_its_incarnation_and_a_new_one_gets_another") {
    TempDir d;
    uint64_t first = 0;
    {
        auto s = open_ok(d.sub("a"));
        first = s->incarnation();
        CHECK(first != 0);
        REQUIRE(s->record_peer_incarnation(2, 0x1234).is_ok());
        REQUIRE(s->record_peer_incarnation(12, 0x5678).is_ok());
        REQUIRE(s->record_peer_incarnation(2, 0x9abc).is_ok());  // node 2 came back anew
    }
    auto s = open_ok(d.sub("a"));
    CHECK(s->incarnation() == first);
    CHECK(s->peer_incarnations() == std::map<uint64_t, uint64_t>{{2, 0x9abc}, {12, 0x5678}});
    // Wiped and made again: the same node id, another incarnation, no peer records.
    s.reset();
    std::filesystem::remove_all(d.sub("a"));
    auto again = open_ok(d.sub("a"));
    CHECK(again->incarnation() != 0);
    CHECK(again->incarnation() != first);
    CHECK(again->peer_incarnations().empty());
}

TEST_CASE("a_data_dir_made_without_an_incarnation_gets_one_on_open") {
    TempDir d;
    { auto s = open_ok(d.path()); }
    {
        // As an older build left it: no "incarnation" key.
        leveldb::DB* raw = nullptr;
        REQUIRE(leveldb::DB::Open(leveldb::Options(), d.sub("meta"), &raw).ok());
        std::unique_ptr<leveldb::DB> db(raw);
        leveldb::WriteOptions wo;
        wo.sync = true;
        REQUIRE(db->Delete(wo, "incarnation").ok());
    }
    uint64_t given = 0;
    {
        auto s = open_ok(d.path());
        given = s->incarnation();
        CHECK(given != 0);
    }
    CHECK(open_ok(d.path())->incarnation() == given);
}
