// DiskStorage: open, identity, meta keys, reads and persist. Snapshot files are in
// snapshot_file.cpp. Formats: docs/wal-format.md sections 1, 5 and 6.
#include "wal/disk_storage.h"

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "raft/confchange.h"
#include "raft/confchange_codec.h"
#include "wal/crc32c.h"
#include "wal/meta_check.h"
#include "wal/record.h"
#include "wal/snapshot_file.h"

namespace raftd::wal {

namespace {

// LevelDB keys (docs/wal-format.md, section 5).
constexpr const char* kKeyVersion = "format_version";
constexpr const char* kKeyCluster = "cluster_id";
constexpr const char* kKeyNode = "node_id";
constexpr const char* kKeyHardState = "hard_state";
constexpr const char* kKeySnapshot = "snapshot";
constexpr const char* kKeyIncarnation = "incarnation";
constexpr std::string_view kPeerPrefix = "peer_incarnation/";  // + the node id in decimal

uint64_t new_incarnation() {
    std::random_device rd;
    uint64_t v = 0;
    while (v == 0)
        v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return v;
}

std::string u32_bytes(uint32_t v) {
    std::string s(4, '\0');
    put_u32(s.data(), v);
    return s;
}
std::string u64_bytes(uint64_t v) {
    std::string s(8, '\0');
    put_u64(s.data(), v);
    return s;
}

std::string encode_hard_state(const raft::HardState& hs) {
    std::string s(24, '\0');
    put_u64(s.data(), hs.term);
    put_u64(s.data() + 8, hs.vote);
    put_u64(s.data() + 16, hs.commit);
    return s;
}

std::string encode_snapshot_record(const raft::SnapshotMeta& m, uint64_t size, uint32_t crc) {
    std::string conf = raft::encode_conf_state(m.conf);
    std::string s(32, '\0');
    put_u64(s.data(), m.index);
    put_u64(s.data() + 8, m.term);
    put_u64(s.data() + 16, size);
    put_u32(s.data() + 24, crc32c::mask(crc));
    put_u32(s.data() + 28, static_cast<uint32_t>(conf.size()));
    return s + conf;
}

Status ldb_status(const leveldb::Status& s, const std::string& what) {
    if (s.ok()) return Status::ok();
    if (s.IsCorruption()) return Status::corruption(what + ": " + s.ToString());
    return Status::io_error(what + ": " + s.ToString());
}

}  // namespace

DiskStorage::DiskStorage(Token, Env* env, std::string dir, DiskStorageOptions opts)
    : env_(env),
      dir_(std::move(dir)),
      wal_dir_(join_path(dir_, "wal")),
      meta_dir_(join_path(dir_, "meta")),
      snap_dir_(join_path(dir_, "snap")),
      opts_(std::move(opts)) {}

DiskStorage::~DiskStorage() = default;

Result<std::unique_ptr<DiskStorage>> DiskStorage::open(Env* env, const std::string& data_dir,
                                                       const DiskStorageOptions& opts) {
    auto s = std::make_unique<DiskStorage>(Token{}, env, data_dir, opts);
    if (Status st = s->open_impl(); !st) {
        return Status(st.code(), "data dir " + data_dir + ": " + st.message());
    }
    return s;
}

Status DiskStorage::open_impl() {
    if (opts_.node_id == 0) return Status::invalid_argument("node id 0 is not a node");
    if (opts_.cluster_id.empty()) return Status::invalid_argument("empty cluster id");
    // Every directory entry we create must survive a power cut before anything inside it
    // is relied on (docs/wal-format.md, section 1): the data dir in its parent, snap/ and
    // meta/ in the data dir (wal/ is SegmentedLog::open's), and LevelDB's first files in meta/
    // (LevelDB syncs meta/ for its MANIFEST but not after renaming CURRENT).
    if (Status st = create_dirs_durably(*env_, dir_); !st) return st;
    if (Status st = env_->create_dirs(snap_dir_); !st) return st;
    // LevelDB does not notice a lost log file, and once open it records a new one and the
    // evidence is gone: checked first (meta_check.h).
    if (Status st = check_leveldb_log_present(meta_dir_); !st) return st;
    leveldb::Options o;
    o.create_if_missing = true;
    o.paranoid_checks = true;
    leveldb::DB* raw = nullptr;
    if (Status st = ldb_status(leveldb::DB::Open(o, meta_dir_, &raw), "meta/"); !st) return st;
    db_.reset(raw);
    if (Status st = env_->sync_dir(meta_dir_); !st) return st;
    if (Status st = env_->sync_dir(dir_); !st) return st;
    if (Status st = verify_meta(); !st) return st;
    if (Status st = check_identity(); !st) return st;
    auto log = SegmentedLog::open(env_, wal_dir_, opts_.log);
    if (!log) return log.status();
    log_ = std::move(log.value());
    if (Status st = load_meta(); !st) return st;
    meta_commit_ = hs_.commit;
    // The commit last written with entries may be newer than the one in meta/, whose
    // commit-only writes are unsynced (docs/wal-format.md, 5.3).
    hs_.commit = std::max(hs_.commit, log_->durable_commit());
    if (Status st = load_peer_incarnations(); !st) return st;
    if (Status st = reconcile_log(); !st) return st;
    return clean_snap_dir();
}

Status DiskStorage::check_identity() {
    std::string v, cluster, node;
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    leveldb::Status sv = db_->Get(ro, kKeyVersion, &v);
    if (sv.IsNotFound()) {
        // A fresh directory, unless a log is already there: then meta/ was lost or replaced,
        // and adopting the log under a new identity could mix two clusters' histories.
        auto names = env_->list_dir(wal_dir_);
        if (names) {
            for (const std::string& n : *names) {
                if (n.size() > 4 && n.ends_with(".log"))
                    return Status::corruption("wal/ holds log segments but meta/ has no identity");
            }
        }
        // A new directory: its own entry in its parent must be durable before state goes
        // in, also when an earlier start created it and crashed before syncing it.
        if (Status st = env_->sync_dir(parent_dir(dir_)); !st) return st;
        leveldb::WriteBatch b;
        incarnation_ = new_incarnation();
        b.Put(kKeyVersion, u32_bytes(kDataDirFormatVersion));
        b.Put(kKeyCluster, opts_.cluster_id);
        b.Put(kKeyNode, u64_bytes(opts_.node_id));
        b.Put(kKeyIncarnation, u64_bytes(incarnation_));
        leveldb::WriteOptions wo;
        wo.sync = true;
        return ldb_status(db_->Write(wo, &b), "meta/ write identity");
    }
    if (Status st = ldb_status(sv, "meta/ read format_version"); !st) return st;
    if (v.size() != 4) return Status::corruption("meta/ format_version has a bad length");
    if (uint32_t ver = get_u32(v.data()); ver != kDataDirFormatVersion) {
        return Status::invalid_argument("format version " + std::to_string(ver) +
                                        " is not supported (this build reads version " +
                                        std::to_string(kDataDirFormatVersion) + ")");
    }
    if (Status st = ldb_status(db_->Get(ro, kKeyCluster, &cluster), "meta/ read cluster_id"); !st)
        return st;
    if (cluster != opts_.cluster_id) {
        return Status::invalid_argument("belongs to cluster '" + cluster + "', not '" +
                                        opts_.cluster_id + "'");
    }
    if (Status st = ldb_status(db_->Get(ro, kKeyNode, &node), "meta/ read node_id"); !st) return st;
    if (node.size() != 8) return Status::corruption("meta/ node_id has a bad length");
    if (uint64_t id = get_u64(node.data()); id != opts_.node_id) {
        return Status::invalid_argument("belongs to node " + std::to_string(id) + ", not node " +
                                        std::to_string(opts_.node_id));
    }
    std::string inc;
    leveldb::Status si = db_->Get(ro, kKeyIncarnation, &inc);
    if (si.IsNotFound()) {
        // Made by a build without incarnations: it gets one now (docs/wal-format.md, 5.2).
        incarnation_ = new_incarnation();
        leveldb::WriteBatch b;
        b.Put(kKeyIncarnation, u64_bytes(incarnation_));
        leveldb::WriteOptions wo;
        wo.sync = true;
        return ldb_status(db_->Write(wo, &b), "meta/ write incarnation");
    }
    if (Status st = ldb_status(si, "meta/ read incarnation"); !st) return st;
    if (inc.size() != 8 || get_u64(inc.data()) == 0)
        return Status::corruption("meta/ incarnation is not a non-zero u64");
    incarnation_ = get_u64(inc.data());
    return Status::ok();
}

// Reads every key of meta/ once with checksums verified, which reads every data block of
// every table: a lookup stops at the newest version of a key, so damage in an older table
// (a superseded value) would pass the reads below and fail a LevelDB compaction later, while
// the node runs. meta/ holds a few keys; this costs nothing measurable.
Status DiskStorage::verify_meta() {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
    }
    return ldb_status(it->status(), "meta/ verify");
}

Status DiskStorage::load_peer_incarnations() {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(leveldb::Slice(kPeerPrefix.data(), kPeerPrefix.size())); it->Valid();
         it->Next()) {
        std::string_view k(it->key().data(), it->key().size());
        if (!k.starts_with(kPeerPrefix)) break;
        std::string id(k.substr(kPeerPrefix.size()));
        char* end = nullptr;
        uint64_t node = std::strtoull(id.c_str(), &end, 10);
        if (id.empty() || *end != '\0' || node == 0 || it->value().size() != 8)
            return Status::corruption("meta/ bad peer incarnation record '" + std::string(k) + "'");
        peer_incarnations_[node] = get_u64(it->value().data());
    }
    return ldb_status(it->status(), "meta/ read peer incarnations");
}

std::map<uint64_t, uint64_t> DiskStorage::peer_incarnations() const {
    std::shared_lock lk(mu_);
    return peer_incarnations_;
}

Status DiskStorage::record_peer_incarnation(uint64_t peer, uint64_t incarnation) {
    if (Status st = failure(); !st) return st;
    leveldb::WriteBatch b;
    b.Put(std::string(kPeerPrefix) + std::to_string(peer), u64_bytes(incarnation));
    if (Status st = write_meta(b, true); !st) return fail(std::move(st));
    std::unique_lock lk(mu_);
    peer_incarnations_[peer] = incarnation;
    return Status::ok();
}

Status DiskStorage::load_meta() {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    std::string v;
    leveldb::Status s = db_->Get(ro, kKeyHardState, &v);
    if (s.ok()) {
        if (v.size() != 24) return Status::corruption("meta/ hard_state has a bad length");
        hs_ = {get_u64(v.data()), get_u64(v.data() + 8), get_u64(v.data() + 16)};
    } else if (!s.IsNotFound()) {
        return ldb_status(s, "meta/ read hard_state");
    }
    s = db_->Get(ro, kKeySnapshot, &v);
    if (s.IsNotFound()) return Status::ok();
    if (Status st = ldb_status(s, "meta/ read snapshot"); !st) return st;
    if (v.size() < 32 || v.size() != 32 + get_u32(v.data() + 28))
        return Status::corruption("meta/ snapshot record has a bad length");
    SnapFile sf;
    sf.meta.index = get_u64(v.data());
    sf.meta.term = get_u64(v.data() + 8);
    sf.data_size = get_u64(v.data() + 16);
    sf.data_crc = crc32c::unmask(get_u32(v.data() + 24));
    auto conf = raft::decode_conf_state(std::string_view(v).substr(32));
    if (!conf) return Status::corruption("meta/ snapshot conf: " + conf.status().message());
    sf.meta.conf = std::move(conf.value());
    sf.path = snap_path(sf.meta);
    if (sf.meta.index == 0) return Status::corruption("meta/ snapshot record at index 0");
    if (Status st = verify_snapshot_file(sf); !st) return st;
    snap_ = std::move(sf);
    return Status::ok();
}

// After a crash inside install_snapshot the metadata names a snapshot the log may not
// match yet (install records the metadata before it resets the log): finish the reset.
Status DiskStorage::reconcile_log() {
    const raft::SnapshotMeta& m = snap_.meta;
    if (m.index == 0) return Status::ok();
    if (log_->first_index() > m.index + 1) {
        return Status::corruption("wal/ starts at index " + std::to_string(log_->first_index()) +
                                  " but the snapshot ends at " + std::to_string(m.index));
    }
    bool matches = false;
    if (log_->last_index() >= m.index) {
        auto t = log_->term(m.index);
        if (!t) return t.status();
        matches = *t == m.term;
    }
    if (!matches) {
        if (Status st = log_->reset(m.index, m.term); !st) return st;
        open_notes_ +=
            "finished an interrupted snapshot install at index " + std::to_string(m.index) + "; ";
    }
    return Status::ok();
}

std::string DiskStorage::snap_path(const raft::SnapshotMeta& m) const {
    return join_path(snap_dir_, snapshot_file_name(m.index, m.term));
}

Status DiskStorage::fail(Status s) {
    std::unique_lock lk(mu_);
    if (failed_.is_ok()) failed_ = s;
    return s;
}

Status DiskStorage::failure() const {
    std::shared_lock lk(mu_);
    if (!failed_.is_ok()) return failed_;
    return log_->failure();
}

Status DiskStorage::write_meta(leveldb::WriteBatch& b, bool sync) {
    leveldb::WriteOptions wo;
    wo.sync = sync;
    if (sync) meta_syncs_.fetch_add(1, std::memory_order_relaxed);
    return ldb_status(db_->Write(wo, &b), "meta/ write");
}

// ---- reads -----------------------------------------------------------------------------

raft::InitialState DiskStorage::initial_state() const {
    std::shared_lock lk(mu_);
    raft::InitialState st;
    st.hard = hs_;
    st.hard.commit = std::max(st.hard.commit, snap_.meta.index);
    st.conf = snap_.meta.conf;
    const Index upto = std::min(st.hard.commit, log_->last_index());
    const Index from = std::max(snap_.meta.index + 1, log_->first_index());
    if (from > upto) return st;
    auto ents = log_->config_entries(from, upto + 1);
    if (!ents) return st;  // reads of durable entries do not fail short of I/O
    for (const raft::Entry& e : *ents) {
        auto cc = raft::decode_conf_change(e.data.view());
        if (!cc) continue;  // raft refuses it identically when it replays the log
        auto nc = raft::apply_conf_change(st.conf, *cc);
        if (nc) st.conf = std::move(nc.value());
    }
    return st;
}

Result<std::vector<raft::Entry>> DiskStorage::entries(Index lo, Index hi,
                                                      uint64_t max_bytes) const {
    std::shared_lock lk(mu_);
    return log_->entries(lo, hi, max_bytes);
}

Result<raft::Term> DiskStorage::term(Index i) const {
    std::shared_lock lk(mu_);
    return log_->term(i);
}

Index DiskStorage::first_index() const {
    std::shared_lock lk(mu_);
    return log_->first_index();
}

Index DiskStorage::last_index() const {
    std::shared_lock lk(mu_);
    return log_->last_index();
}

Result<std::vector<raft::Entry>> DiskStorage::config_entries(Index lo, Index hi) const {
    std::shared_lock lk(mu_);
    return log_->config_entries(lo, hi);
}

raft::SnapshotMeta DiskStorage::snapshot_meta() const {
    std::shared_lock lk(mu_);
    return snap_.meta;
}

Result<raft::SnapshotBytes> DiskStorage::read_snapshot(Index index, uint64_t offset,
                                                       uint64_t max_bytes) const {
    std::shared_ptr<File> f;
    uint64_t size = 0;
    {
        std::shared_lock lk(mu_);
        if (snap_.meta.index == 0 || snap_.meta.index != index)
            return Status::not_found("snapshot " + std::to_string(index) + " is not the latest");
        f = snap_.file;
        size = snap_.data_size;
    }
    if (offset > size) {
        return Status::invalid_argument("snapshot offset " + std::to_string(offset) +
                                        " is past its end " + std::to_string(size));
    }
    uint64_t n = std::min<uint64_t>(max_bytes, size - offset);
    raft::SnapshotBytes out;
    out.data.resize(n);
    // The file stays readable after it stopped being current (we hold the handle), so a
    // read racing with an install returns the old, consistent bytes.
    if (Status st = read_exact(*f, kSnapHeaderSize + offset, out.data.data(), n); !st) return st;
    out.done = offset + n == size;
    return out;
}

// ---- persist ---------------------------------------------------------------------------

Status DiskStorage::persist(std::span<const raft::Entry> entries,
                            const std::optional<raft::HardState>& hs) {
    if (Status st = failure(); !st) return st;
    // hs_ is written by this thread only.
    const raft::HardState next = hs ? *hs : hs_;
    if (!entries.empty()) {
        // Entries first, the commit known now after them in the same batch and fdatasync:
        // a node restarted from these entries must not rebuild its membership from an
        // older commit than the one it had when it wrote them (docs/wal-format.md, 5.3).
        const Index commit = std::min(next.commit, entries.back().index);
        if (entries.front().index <= log_->last_index() && log_->durable_commit() > 0) {
            // A truncating batch removes commit records with the entries it replaces before
            // it writes its own: the commit goes to meta/, synced, first, so no crash point
            // in between recovers an older one. Truncations are rare (a new leader).
            raft::HardState keep = hs_;
            keep.commit = std::max(hs_.commit, log_->durable_commit());
            leveldb::WriteBatch b;
            b.Put(kKeyHardState, encode_hard_state(keep));
            if (Status st = write_meta(b, true); !st) return fail(std::move(st));
            meta_commit_ = keep.commit;
        }
        if (Status st = log_->append(entries, commit); !st) {
            // A batch the log refuses (a gap, a term going back) changed nothing; anything
            // else failed the log and fails us with it.
            return log_->failure().is_ok() ? st : fail(std::move(st));
        }
        for (const raft::Entry& e : entries)
            unrecorded_bytes_ += e.data.size() + kRecordHeaderSize + kEntryFixedSize;
    }
    if (next == hs_) return Status::ok();
    // Term and vote must be durable before any message depends on them: a synced write.
    // A commit that went into the log above needs no write here. A commit-only change
    // without entries is written unsynced: it reaches the kernel before Write() returns,
    // the next synced write makes it durable, and losing it in a machine crash loses no
    // configuration (the entries it covers were written with a commit at least as new as
    // any configuration entry among them could need; docs/wal-format.md, 5.3).
    //
    // The commit also goes to meta/ (unsynced) once kCommitEvidenceBytes of entries were
    // appended since it was last written there: the commit records travel with the entries,
    // so a lost or cut end of the last segment takes them along and would leave nothing
    // that says committed entries are missing. meta/'s commit is what raft checks the log's
    // end against on load (docs/wal-format.md, section 3, "What the log alone cannot see").
    const bool sync = next.term != hs_.term || next.vote != hs_.vote;
    const bool evidence = unrecorded_bytes_ >= kCommitEvidenceBytes && next.commit > meta_commit_;
    if (sync || entries.empty() || log_->durable_commit() < next.commit || evidence) {
        leveldb::WriteBatch b;
        b.Put(kKeyHardState, encode_hard_state(next));
        if (Status st = write_meta(b, sync); !st) return fail(std::move(st));
        meta_commit_ = next.commit;
        unrecorded_bytes_ = 0;
    }
    std::unique_lock lk(mu_);
    hs_ = next;
    return Status::ok();
}

// ---- snapshots ---------------------------------------------------------------------------

Result<std::unique_ptr<SnapshotFileWriter>> DiskStorage::begin_snapshot(
    const raft::SnapshotMeta& meta) {
    if (Status st = failure(); !st) return st;
    if (meta.index == 0 || meta.term == 0)
        return Status::invalid_argument("snapshot needs an index and a term >= 1");
    if (meta.index <= snapshot_meta().index) {
        return Status::invalid_argument("snapshot at " + std::to_string(meta.index) +
                                        " is not newer than the current one at " +
                                        std::to_string(snapshot_meta().index));
    }
    std::string final_path = snap_path(meta);
    std::string tmp = final_path + "." + std::to_string(++writer_seq_) + ".tmp";
    auto f = env_->open(tmp, OpenMode::kCreateTrunc);
    if (!f) return f.status();
    char hdr[kSnapHeaderSize];
    encode_snap_header(meta.index, meta.term, hdr);
    if (Status st = write_all(**f, 0, hdr, sizeof hdr); !st) {
        f.value().reset();
        (void)env_->remove(tmp);
        return st;
    }
    return std::make_unique<SnapshotFileWriter>(SnapshotFileWriter::Token{}, this, meta, tmp,
                                                final_path, std::move(f.value()));
}

void DiskStorage::committed(SnapFile sf) {
    // A committed file nobody made current is garbage once a newer one is committed.
    if (pending_ && pending_->path != sf.path) (void)remove_snapshot_file(pending_->path);
    pending_ = std::move(sf);
}

Status DiskStorage::take_pending(const raft::SnapshotMeta& meta, SnapFile& out) {
    if (!pending_ || pending_->meta.index != meta.index || pending_->meta.term != meta.term) {
        return Status::invalid_argument("no committed snapshot file for index " +
                                        std::to_string(meta.index) + " term " +
                                        std::to_string(meta.term));
    }
    if (meta.index <= snapshot_meta().index) {
        // Overtaken (e.g. a leader's snapshot was installed while the application wrote
        // this one): the file can never become current, so it goes now.
        (void)remove_snapshot_file(pending_->path);
        pending_.reset();
        return Status::invalid_argument("snapshot at " + std::to_string(meta.index) +
                                        " is not newer than the current one at " +
                                        std::to_string(snapshot_meta().index));
    }
    out = std::move(*pending_);
    pending_.reset();
    out.meta = meta;  // the caller's conf is authoritative
    auto f = env_->open(out.path, OpenMode::kRead);
    if (!f) return f.status();
    out.file = std::move(f.value());
    return Status::ok();
}

Status DiskStorage::remove_snapshot_file(const std::string& path) {
    if (Status st = env_->remove(path); !st) return st;
    return env_->sync_dir(snap_dir_);
}

Status DiskStorage::install_snapshot(const raft::SnapshotMeta& meta) {
    if (Status st = failure(); !st) return st;
    SnapFile sf;
    if (Status st = take_pending(meta, sf); !st) return st;
    raft::HardState hs = hs_;
    hs.commit = std::max(hs.commit, meta.index);
    // Metadata first, then the log: a crash in between leaves metadata naming a snapshot
    // the log does not match, which open() repairs by finishing the reset (the other order
    // could leave a log that starts after the only snapshot that covers its gap).
    leveldb::WriteBatch b;
    b.Put(kKeySnapshot, encode_snapshot_record(meta, sf.data_size, sf.data_crc));
    b.Put(kKeyHardState, encode_hard_state(hs));
    if (Status st = write_meta(b, true); !st) return fail(std::move(st));
    std::string old;
    {
        std::unique_lock lk(mu_);
        if (Status st = log_->reset(meta.index, meta.term); !st) {
            lk.unlock();
            return fail(std::move(st));
        }
        old = snap_.meta.index ? snap_.path : "";
        snap_ = std::move(sf);
        hs_ = hs;
    }
    if (!old.empty()) {
        if (Status st = remove_snapshot_file(old); !st) return fail(std::move(st));
    }
    return Status::ok();
}

Status DiskStorage::save_snapshot_and_compact(const raft::SnapshotMeta& meta) {
    if (Status st = failure(); !st) return st;
    SnapFile sf;
    if (Status st = take_pending(meta, sf); !st) return st;
    // A snapshot that does not match the log can never become current: its file goes.
    auto refuse = [&](std::string why) {
        (void)remove_snapshot_file(sf.path);
        return Status::invalid_argument(std::move(why));
    };
    if (meta.index > log_->last_index() || meta.index < log_->first_index() - 1) {
        return refuse("snapshot at " + std::to_string(meta.index) + " is outside the log [" +
                      std::to_string(log_->first_index()) + ", " +
                      std::to_string(log_->last_index()) + "]");
    }
    auto t = log_->term(meta.index);
    if (!t) return t.status();
    if (*t != meta.term) {
        return refuse("snapshot term " + std::to_string(meta.term) +
                      " differs from the log's term " + std::to_string(*t) + " at index " +
                      std::to_string(meta.index));
    }
    leveldb::WriteBatch b;
    b.Put(kKeySnapshot, encode_snapshot_record(meta, sf.data_size, sf.data_crc));
    if (Status st = write_meta(b, true); !st) return fail(std::move(st));
    std::string old;
    {
        std::unique_lock lk(mu_);
        old = snap_.meta.index ? snap_.path : "";
        snap_ = std::move(sf);
    }
    if (!old.empty()) {
        if (Status st = remove_snapshot_file(old); !st) return fail(std::move(st));
    }
    // The snapshot is current before anything it covers goes, so readers that find an entry
    // compacted also find the snapshot that replaces it.
    if (Status st = log_->compact(meta.index); !st) return fail(std::move(st));
    return Status::ok();
}

}  // namespace raftd::wal
