// wal_bench: throughput of SegmentedLog::append (group commit) against a raw pwrite+fdatasync loop
// of the same bytes in the same directory, measured in the same run, plus log recovery time.
//
// For each (entry size, batch size) cell, the WAL appends batches for --seconds, then the
// raw loop writes the same number of batches of exactly the bytes the WAL wrote per batch
// (records with their framing) into a file preallocated like a segment, each followed by
// one fdatasync. WAL and raw runs alternate --reps times; the median of each is reported
// with the ratio wal/raw and the WAL's CPU time per entry (user+sys of this process).
//
// Owns: its scratch directory (removed at the end). Never: part of make test (timings
// belong to benchmarks).
//
// usage: wal_bench [--dir D] [--sizes 64,256,4096] [--batches 1,16,256] [--seconds 1]
//                  [--reps 3] [--recovery-mb 0] [--persist] [--drop-caches] [--json]
// --persist measures DiskStorage::persist (entries plus a hard state whose commit moved)
// instead of SegmentedLog::append. --drop-caches empties the page cache before the recovery run
// (writes /proc/sys/vm/drop_caches; needs root) so recovery reads from the disk.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "wal/crc32c.h"
#include "wal/disk_storage.h"
#include "wal/record.h"
#include "wal/segmented_log.h"

using namespace raftd;
using namespace raftd::wal;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    std::string dir;
    std::vector<size_t> sizes = {64, 256, 4096};
    std::vector<size_t> batches = {1, 16, 256};
    double seconds = 1.0;
    int reps = 3;
    size_t recovery_mb = 0;
    bool json = false;
    bool persist = false;      // measure DiskStorage::persist (entries + hard state)
    bool drop_caches = false;  // recovery from a cold page cache (root only)
};

std::vector<size_t> parse_list(const char* s) {
    std::vector<size_t> v;
    for (const char* p = s; *p;) {
        char* end = nullptr;
        v.push_back(std::strtoull(p, &end, 10));
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p) break;
    }
    return v;
}

[[noreturn]] void die(const std::string& m) {
    std::fprintf(stderr, "wal_bench: %s\n", m.c_str());
    std::exit(1);
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Run {
    double seconds = 0;
    double cpu = 0;
    uint64_t batches = 0;
};

// Appends batches of `n` entries of `size` bytes for about `secs` (or exactly `count`
// batches when count > 0).
Run run_wal(const std::string& dir, size_t size, size_t n, double secs, uint64_t count,
            bool persist) {
    std::filesystem::remove_all(dir);
    std::unique_ptr<SegmentedLog> log;
    std::unique_ptr<DiskStorage> storage;
    if (persist) {
        DiskStorageOptions so;
        so.cluster_id = "bench";
        so.node_id = 1;
        auto sr = DiskStorage::open(Env::posix(), dir, so);
        if (!sr) die(sr.status().to_string());
        storage = std::move(sr.value());
    } else {
        auto lr = SegmentedLog::open(Env::posix(), dir, SegmentedLogOptions{});
        if (!lr) die(lr.status().to_string());
        log = std::move(lr.value());
    }
    raft::Payload payload(std::string(size, 'x'));
    std::vector<raft::Entry> batch(n);
    for (auto& e : batch) {
        e.term = 1;
        e.data = payload;
    }
    raft::Index next = 1;
    // With --persist every batch also records a hard state whose commit moved (a leader's
    // steady state: unsynced LevelDB write); the first one, with a new term, is synced.
    auto append = [&]() {
        for (size_t j = 0; j < n; j++)
            batch[j].index = next + j;
        Status st =
            persist ? storage->persist(batch, raft::HardState{1, 1, next - 1}) : log->append(batch);
        if (!st) die(st.to_string());
        next += n;
    };
    // One untimed batch first: the first segment is created (and preallocated) lazily.
    append();
    Run r;
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::duration<double>(secs);
    while (count ? r.batches < count : Clock::now() < deadline) {
        append();
        r.batches++;
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.cpu = cpu_seconds() - cpu0;
    return r;
}

// The same bytes per batch with pwrite + fdatasync into a preallocated file, as a segment.
Run run_raw(const std::string& dir, size_t batch_bytes, uint64_t count) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/raw";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open " + path + ": " + std::strerror(errno));
    const uint64_t seg = 64u << 20;
    (void)::fallocate(fd, 0, 0, static_cast<off_t>(seg));
    (void)::fdatasync(fd);
    std::string buf(batch_bytes, 'x');
    uint64_t off = 0;
    Run r;
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (; r.batches < count; r.batches++) {
        if (off + batch_bytes > seg) {  // roll over like a segment would
            off = 0;
        }
        if (::pwrite(fd, buf.data(), batch_bytes, static_cast<off_t>(off)) !=
            static_cast<ssize_t>(batch_bytes))
            die("pwrite: " + std::string(std::strerror(errno)));
        if (::fdatasync(fd) != 0) die("fdatasync: " + std::string(std::strerror(errno)));
        off += batch_bytes;
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.cpu = cpu_seconds() - cpu0;
    ::close(fd);
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Cell {
    size_t size, batch;
    double wal_eps, raw_eps, wal_mbps, raw_mbps, ratio, wal_cpu_us_per_entry, raw_cpu_us_per_entry;
};

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        std::string k = argv[i];
        auto val = [&]() -> const char* {
            if (i + 1 >= argc) die("missing value for " + k);
            return argv[++i];
        };
        if (k == "--dir")
            a.dir = val();
        else if (k == "--sizes")
            a.sizes = parse_list(val());
        else if (k == "--batches")
            a.batches = parse_list(val());
        else if (k == "--seconds")
            a.seconds = std::atof(val());
        else if (k == "--reps")
            a.reps = std::max(1, std::atoi(val()));
        else if (k == "--recovery-mb")
            a.recovery_mb = std::strtoull(val(), nullptr, 10);
        else if (k == "--json")
            a.json = true;
        else if (k == "--persist")
            a.persist = true;
        else if (k == "--drop-caches")
            a.drop_caches = true;
        else if (k == "--help" || k == "-h") {
            std::printf(
                "usage: wal_bench [--dir D] [--sizes 64,256,4096] [--batches 1,16,256] "
                "[--seconds 1] [--reps 3] [--recovery-mb 0] [--persist] [--drop-caches] "
                "[--json]\n");
            return 0;
        } else
            die("unknown argument " + k);
    }
    bool own_dir = a.dir.empty();
    if (own_dir) {
        std::string t = (std::filesystem::temp_directory_path() / "wal-bench-XXXXXX").string();
        if (!::mkdtemp(t.data())) die("mkdtemp failed");
        a.dir = t;
    }
    const std::string wal_dir = a.dir + "/wal", raw_dir = a.dir + "/raw";

    std::vector<Cell> cells;
    for (size_t size : a.sizes) {
        for (size_t n : a.batches) {
            const size_t batch_bytes =
                n * (kRecordHeaderSize + kEntryFixedSize + size);  // what the WAL writes
            std::vector<double> wal_eps, raw_eps, wal_cpu, raw_cpu;
            uint64_t count = 0;
            for (int rep = 0; rep < a.reps; rep++) {
                Run w = run_wal(wal_dir, size, n, a.seconds, count, a.persist);
                if (count == 0) count = std::max<uint64_t>(w.batches, 1);  // fix the work
                Run r = run_raw(raw_dir, batch_bytes, count);
                wal_eps.push_back(static_cast<double>(w.batches * n) / w.seconds);
                raw_eps.push_back(static_cast<double>(r.batches * n) / r.seconds);
                wal_cpu.push_back(w.cpu / static_cast<double>(w.batches * n) * 1e6);
                raw_cpu.push_back(r.cpu / static_cast<double>(r.batches * n) * 1e6);
            }
            Cell c{size, n, median(wal_eps), median(raw_eps), 0,
                   0,    0, median(wal_cpu), median(raw_cpu)};
            c.wal_mbps = c.wal_eps * static_cast<double>(size) / 1e6;
            c.raw_mbps = c.raw_eps * static_cast<double>(size) / 1e6;
            c.ratio = c.wal_eps / c.raw_eps;
            cells.push_back(c);
            if (!a.json) {
                if (cells.size() == 1) {
                    std::printf("crc32c hardware: %s\n",
                                crc32c::hardware_accelerated() ? "yes" : "no");
                    std::printf("%6s %6s | %12s %9s | %12s %9s | %6s | %s\n", "size", "batch",
                                "wal ent/s", "wal MB/s", "raw ent/s", "raw MB/s", "ratio",
                                "cpu us/entry wal raw");
                }
                std::printf("%6zu %6zu | %12.0f %9.2f | %12.0f %9.2f | %5.0f%% | %.2f %.2f\n", size,
                            n, c.wal_eps, c.wal_mbps, c.raw_eps, c.raw_mbps, c.ratio * 100,
                            c.wal_cpu_us_per_entry, c.raw_cpu_us_per_entry);
                std::fflush(stdout);
            }
        }
    }

    double rec_seconds = 0;
    bool cold = false;
    uint64_t rec_bytes = 0;
    if (a.recovery_mb > 0) {
        std::filesystem::remove_all(wal_dir);
        {
            auto lr = SegmentedLog::open(Env::posix(), wal_dir, SegmentedLogOptions{});
            if (!lr) die(lr.status().to_string());
            raft::Payload payload(std::string(4096, 'r'));
            std::vector<raft::Entry> batch(256);
            raft::Index next = 1;
            while (rec_bytes < a.recovery_mb * (1ull << 20)) {
                for (size_t j = 0; j < batch.size(); j++)
                    batch[j] = {next + j, 1, raft::EntryType::kData, payload};
                if (Status st = lr.value()->append(batch); !st) die(st.to_string());
                next += batch.size();
                rec_bytes += batch.size() * (4096 + kRecordHeaderSize + kEntryFixedSize);
            }
        }
        if (a.drop_caches) {
            ::sync();
            if (FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w")) {
                cold = std::fputs("3\n", f) >= 0;
                cold = (std::fclose(f) == 0) && cold;
            }
            if (!cold) std::fprintf(stderr, "wal_bench: could not drop the page cache\n");
        }
        const auto t0 = Clock::now();
        auto lr = SegmentedLog::open(Env::posix(), wal_dir, SegmentedLogOptions{});
        if (!lr) die(lr.status().to_string());
        rec_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!a.json)
            std::printf(
                "recovery: %.0f MiB, %zu segments, %llu entries in %.3f s (%.0f MiB/s, "
                "page cache %s)\n",
                static_cast<double>(rec_bytes) / (1 << 20), lr.value()->segment_count(),
                static_cast<unsigned long long>(lr.value()->last_index()), rec_seconds,
                static_cast<double>(rec_bytes) / (1 << 20) / rec_seconds,
                cold ? "dropped first" : "warm");
    }

    if (a.json) {
        std::printf("{\"crc32c_hardware\": %s, \"cells\": [",
                    crc32c::hardware_accelerated() ? "true" : "false");
        for (size_t i = 0; i < cells.size(); i++) {
            const Cell& c = cells[i];
            std::printf(
                "%s{\"entry_bytes\": %zu, \"batch\": %zu, \"wal_entries_per_s\": %.0f, "
                "\"wal_mb_per_s\": %.3f, \"raw_entries_per_s\": %.0f, "
                "\"raw_mb_per_s\": %.3f, \"ratio\": %.3f, \"wal_cpu_us_per_entry\": %.3f, "
                "\"raw_cpu_us_per_entry\": %.3f}",
                i ? ", " : "", c.size, c.batch, c.wal_eps, c.wal_mbps, c.raw_eps, c.raw_mbps,
                c.ratio, c.wal_cpu_us_per_entry, c.raw_cpu_us_per_entry);
        }
        std::printf("]");
        if (a.recovery_mb > 0)
            std::printf(", \"recovery\": {\"bytes\": %llu, \"seconds\": %.3f, \"cold\": %s}",
                        static_cast<unsigned long long>(rec_bytes), rec_seconds,
                        cold ? "true" : "false");
        std::printf("}\n");
    }
    std::error_code ec;
    if (own_dir)
        std::filesystem::remove_all(a.dir, ec);
    else {
        std::filesystem::remove_all(wal_dir, ec);
        std::filesystem::remove_all(raw_dir, ec);
    }
    return 0;
}
