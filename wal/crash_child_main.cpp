// wal_crash_child: the victim of the WAL crash test (wal/crash_test.cpp). Executes the
// seeded CrashPlan against a DurableStorage from batch `from` on and, after each persist
// returned (the batch is durable), writes the batch number as 8 bytes to `report_fd`. It
// runs until it is SIGKILLed.
//
// Owns: nothing beyond its process. Never: reports a batch before persist returned ok.
//
// usage: wal_crash_child DIR SEED FROM SEGMENT_BYTES PREALLOCATE(0|1) REPORT_FD
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "wal/crash_plan.h"
#include "wal/storage.h"

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
    StorageOptions o;
    o.cluster_id = "crash";
    o.node_id = 1;
    o.log.segment_bytes = std::strtoull(argv[4], nullptr, 10);
    o.log.preallocate = std::string(argv[5]) == "1";
    const int fd = std::atoi(argv[6]);

    auto s = DurableStorage::open(Env::posix(), dir, o);
    if (!s) {
        std::fprintf(stderr, "crash child: open: %s\n", s.status().to_string().c_str());
        return 3;
    }
    testing::CrashPlan plan(seed);
    for (size_t k = from;; k++) {
        const testing::PlannedBatch& b = plan.batch(k);
        auto ents = plan.entries(b);
        if (Status st = (*s)->persist(ents, b.hs); !st) {
            std::fprintf(stderr, "crash child: persist batch %zu: %s\n", k, st.to_string().c_str());
            return 4;
        }
        uint64_t v = k;
        if (::write(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return 5;
    }
}
