// Snapshot files: the format helpers, SnapshotFileWriter, and DiskStorage's verification and
// clean-up of snap/ (docs/wal-format.md, section 6).
#include "wal/snapshot_file.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "wal/crc32c.h"
#include "wal/disk_storage.h"
#include "wal/record.h"

namespace raftd::wal {

std::string snapshot_file_name(raft::Index index, raft::Term term) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%020" PRIu64 "-%020" PRIu64 ".snap", index, term);
    return buf;
}

void encode_snap_header(raft::Index index, raft::Term term, char out[kSnapHeaderSize]) {
    std::memcpy(out, kSnapMagic, 8);
    put_u32(out + 8, kSnapVersion);
    put_u64(out + 12, index);
    put_u64(out + 20, term);
    put_u32(out + 28, crc32c::mask(crc32c::value(out, 28)));
}

Status decode_snap_header(const char* p, raft::Index* index, raft::Term* term) {
    if (std::memcmp(p, kSnapMagic, 8) != 0) return Status::corruption("not a snapshot file");
    if (crc32c::unmask(get_u32(p + 28)) != crc32c::value(p, 28))
        return Status::corruption("snapshot header CRC mismatch");
    if (uint32_t v = get_u32(p + 8); v != kSnapVersion)
        return Status::corruption("unknown snapshot version " + std::to_string(v));
    *index = get_u64(p + 12);
    *term = get_u64(p + 20);
    return Status::ok();
}

void encode_snap_trailer(uint64_t data_size, uint32_t crc, char out[kSnapTrailerSize]) {
    put_u64(out, data_size);
    put_u32(out + 8, crc32c::mask(crc));
    put_u32(out + 12, crc32c::mask(crc32c::value(out, 12)));
}

Status decode_snap_trailer(const char* p, uint64_t* data_size, uint32_t* crc) {
    if (crc32c::unmask(get_u32(p + 12)) != crc32c::value(p, 12))
        return Status::corruption("snapshot trailer CRC mismatch");
    *data_size = get_u64(p);
    *crc = crc32c::unmask(get_u32(p + 8));
    return Status::ok();
}

// ---- SnapshotFileWriter ----------------------------------------------------------------------

SnapshotFileWriter::SnapshotFileWriter(Token, DiskStorage* owner, raft::SnapshotMeta meta,
                                       std::string tmp_path, std::string final_path,
                                       std::unique_ptr<File> file)
    : owner_(owner),
      meta_(std::move(meta)),
      tmp_path_(std::move(tmp_path)),
      final_path_(std::move(final_path)),
      file_(std::move(file)) {}

SnapshotFileWriter::~SnapshotFileWriter() {
    abandon();
}

void SnapshotFileWriter::abandon() {
    if (!file_) return;
    file_.reset();
    // Best effort: a leftover temporary file is removed by the next open() anyway.
    (void)owner_->env_->remove(tmp_path_);
}

Status SnapshotFileWriter::write(uint64_t offset, std::string_view data) {
    if (!failed_.is_ok()) return failed_;
    if (!file_) return Status::invalid_argument("snapshot writer already committed");
    if (offset != written_) {
        return Status::invalid_argument("snapshot chunk at offset " + std::to_string(offset) +
                                        ", expected " + std::to_string(written_));
    }
    if (Status st = write_all(*file_, kSnapHeaderSize + written_, data.data(), data.size()); !st) {
        failed_ = st;
        abandon();
        return st;
    }
    crc_ = crc32c::extend(crc_, data.data(), data.size());
    written_ += data.size();
    return Status::ok();
}

Status SnapshotFileWriter::commit() {
    if (!failed_.is_ok()) return failed_;
    if (!file_) return Status::invalid_argument("snapshot writer already committed");
    char tr[kSnapTrailerSize];
    encode_snap_trailer(written_, crc_, tr);
    Status st = write_all(*file_, kSnapHeaderSize + written_, tr, sizeof tr);
    if (st) st = file_->sync();
    if (st) {
        file_.reset();
        st = owner_->env_->rename(tmp_path_, final_path_);
        if (!st) (void)owner_->env_->remove(tmp_path_);
    }
    // Until the directory is synced the rename may not survive a crash; only then may the
    // caller make the snapshot current.
    if (st) st = owner_->env_->sync_dir(owner_->snap_dir_);
    if (!st) {
        failed_ = st;
        abandon();
        return st;
    }
    DiskStorage::SnapFile sf;
    sf.meta = meta_;
    sf.data_size = written_;
    sf.data_crc = crc_;
    sf.path = final_path_;
    owner_->committed(std::move(sf));
    return Status::ok();
}

// ---- DiskStorage: verification and clean-up of snap/ ------------------------------------

Status DiskStorage::verify_snapshot_file(SnapFile& sf) const {
    const std::string name = "snap/" + snapshot_file_name(sf.meta.index, sf.meta.term);
    auto f = env_->open(sf.path, OpenMode::kRead);
    if (!f) {
        return Status::corruption("the current snapshot file " + name +
                                  " cannot be opened: " + f.status().message());
    }
    auto size = (*f)->size();
    if (!size) return size.status();
    if (*size != kSnapHeaderSize + sf.data_size + kSnapTrailerSize) {
        return Status::corruption(
            name + ": size " + std::to_string(*size) + ", expected " +
            std::to_string(kSnapHeaderSize + sf.data_size + kSnapTrailerSize));
    }
    char hdr[kSnapHeaderSize], tr[kSnapTrailerSize];
    if (Status st = read_exact(**f, 0, hdr, sizeof hdr); !st) return st;
    raft::Index idx = 0;
    raft::Term term = 0;
    if (Status st = decode_snap_header(hdr, &idx, &term); !st)
        return Status::corruption(name + ": " + st.message());
    if (idx != sf.meta.index || term != sf.meta.term)
        return Status::corruption(name + ": header names index " + std::to_string(idx) + " term " +
                                  std::to_string(term));
    if (Status st = read_exact(**f, kSnapHeaderSize + sf.data_size, tr, sizeof tr); !st) return st;
    uint64_t tsize = 0;
    uint32_t tcrc = 0;
    if (Status st = decode_snap_trailer(tr, &tsize, &tcrc); !st)
        return Status::corruption(name + ": " + st.message());
    if (tsize != sf.data_size || tcrc != sf.data_crc)
        return Status::corruption(name + ": trailer disagrees with meta/ snapshot record");
    std::string buf(1u << 20, '\0');
    uint32_t crc = 0;
    for (uint64_t off = 0; off < sf.data_size;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), sf.data_size - off));
        if (Status st = read_exact(**f, kSnapHeaderSize + off, buf.data(), n); !st) return st;
        crc = crc32c::extend(crc, buf.data(), n);
        off += n;
    }
    if (crc != sf.data_crc)
        return Status::corruption(name + ": data CRC mismatch (the file is damaged)");
    sf.file = std::move(f.value());
    return Status::ok();
}

// Removes every file in snap/ but the current snapshot: temporary files of unfinished
// writers, committed files never made current, and previous snapshots whose removal a crash
// interrupted.
Status DiskStorage::clean_snap_dir() {
    auto names = env_->list_dir(snap_dir_);
    if (!names) return names.status();
    const std::string keep =
        snap_.meta.index ? snapshot_file_name(snap_.meta.index, snap_.meta.term) : "";
    size_t removed = 0;
    for (const std::string& n : *names) {
        if (n == keep || !(n.ends_with(".tmp") || n.ends_with(".snap"))) continue;
        if (Status st = env_->remove(join_path(snap_dir_, n)); !st) return st;
        removed++;
    }
    if (removed == 0) return Status::ok();
    open_notes_ += "removed " + std::to_string(removed) + " stale file(s) from snap/; ";
    return env_->sync_dir(snap_dir_);
}

}  // namespace raftd::wal
