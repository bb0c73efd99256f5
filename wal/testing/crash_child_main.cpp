// wal_crash_child: the victim of the WAL crash test (wal/crash_test.cpp). Executes the
// seeded CrashPlan against a DiskStorage from step `from` on (appends through persist,
// snapshots through a SnapshotFileWriter and save_snapshot_and_compact / install_snapshot) and,
// after each step returned ok (it is durable), writes the step number as 8 bytes to
// `report_fd`. It runs until it is SIGKILLed.
//
// Owns: nothing beyond its process. Never: reports a step before it returned ok.
//
// usage: wal_crash_child DIR SEED FROM SEGMENT_BYTES PREALLOCATE(0|1) REPORT_FD
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "wal/disk_storage.h"
#include "wal/testing/crash_plan.h"

using namespace raftd;
using namespace raftd::wal;

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s DIR SEED FROM SEGMENT_BYTES PREALLOCATE REPORT_FD\n",
                     argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const uint64_t seed = std::strtoull(argv[2], nullptr, 10);
    const size_t from = std::strtoull(argv[3], nullptr, 10);
    DiskStorageOptions o;
    o.cluster_id = "crash";
    o.node_id = 1;
    o.log.segment_bytes = std::strtoull(argv[4], nullptr, 10);
    o.log.preallocate = std::string(argv[5]) == "1";
    const int fd = std::atoi(argv[6]);

    auto s = DiskStorage::open(Env::posix(), dir, o);
    if (!s) {
        std::fprintf(stderr, "crash child: open: %s\n", s.status().to_string().c_str());
        return 3;
    }
    testing::CrashPlan plan(seed);
    DiskStorage& st = *s.value();
    for (size_t k = from;; k++) {
        const testing::PlannedStep& b = plan.step(k);
        Status res;
        if (b.kind == testing::StepKind::kAppend) {
            res = st.persist(testing::CrashPlan::entries(b), b.hs);
        } else if (st.snapshot_meta().index < b.snap_index) {
            // (A snapshot step that completed before the previous kill but was not reported
            // is already current: nothing to redo.)
            const raft::SnapshotMeta meta = testing::crash_snapshot_meta(b);
            const std::string data = testing::crash_snapshot_data(b.snap_index, b.snap_term);
            auto w = st.begin_snapshot(meta);
            res = w.is_ok() ? Status::ok() : w.status();
            for (size_t off = 0; res && off < data.size(); off += 4096)
                res = (*w)->write(off, std::string_view(data).substr(off, 4096));
            if (res) res = (*w)->commit();
            if (res)
                res = b.kind == testing::StepKind::kSave ? st.save_snapshot_and_compact(meta)
                                                         : st.install_snapshot(meta);
        }
        if (!res) {
            std::fprintf(stderr, "crash child: step %zu: %s\n", k, res.to_string().c_str());
            return 4;
        }
        uint64_t v = k;
        if (::write(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return 5;
    }
}
