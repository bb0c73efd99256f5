// wal_fiu_probe: fault injection at the libc boundary with libfiu, run by
// tests/scripts/wal_fiu.sh under `fiu-run -x` (which preloads libfiu's POSIX wrappers).
// The probe turns a failure point on itself at the chosen moment (fiu_enable), so the
// metadata store and the log's set-up run on a healthy disk and only the write under test
// meets the fault. Each scenario checks that the failure is reported, is sticky, that
// nothing unacknowledged was reported durable, and what a reopen recovers.
//
// Owns: nothing beyond its process. Never: passes when the failure point was not reached
// (a probe that cannot see the fault must say so, not succeed).
//
// usage: wal_fiu_probe fdatasync|pwritev|enospc|short DIR     (exit 0 = pass)
#include <fiu-control.h>
#include <fiu.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "wal/disk_storage.h"
#include "wal/testing/fault_env.h"
#include "wal/testing/util.h"

using namespace raftd;
using namespace raftd::wal;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
    if (!ok) failures++;
}

DiskStorageOptions opts() {
    DiskStorageOptions o;
    o.cluster_id = "fiu";
    o.node_id = 1;
    o.log.segment_bytes = 1 << 20;
    return o;
}

std::unique_ptr<DiskStorage> open_or_die(const std::string& dir, Env* env = Env::posix()) {
    auto s = DiskStorage::open(env, dir, opts());
    if (!s) {
        std::printf("FAIL: open: %s\n", s.status().to_string().c_str());
        std::exit(1);
    }
    return std::move(s.value());
}

std::vector<raft::Entry> batch(raft::Index first) {
    return testing::make_batch(first, 10, 1, 300);
}

// The fault hits batch 4 (entries 31..40); batches 1..3 were acknowledged.
int fail_scenario(const std::string& dir, const char* point, int err, const char* text) {
    {
        auto s = open_or_die(dir);
        for (raft::Index f = 1; f <= 21; f += 10)
            expect(s->persist(batch(f), raft::HardState{1, 1, f - 1}).is_ok(), "healthy batch");
        fiu_enable(point, 1, reinterpret_cast<void*>(static_cast<intptr_t>(err)), 0);
        Status st = s->persist(batch(31), raft::HardState{1, 1, 30});
        fiu_disable(point);
        expect(st.code() == Code::kIoError,
               std::string("batch under ") + point + " fails with IoError: " + st.to_string());
        expect(st.message().find(text) != std::string::npos,
               std::string("the error names ") + text);
        expect(s->last_index() == 30, "the failed batch is not readable");
        // Sticky, though the disk is healthy again: the page cache may have dropped the data.
        expect(s->persist(batch(31), std::nullopt).code() == Code::kIoError,
               "a retry of the batch is refused");
        expect(s->persist({}, raft::HardState{2, 0, 30}).code() == Code::kIoError,
               "a hard-state-only write is refused");
        expect(s->failure().code() == Code::kIoError, "failure() reports it");
    }
    auto s = open_or_die(dir);
    const raft::Index last = s->last_index();
    expect(last == 30 || last == 40,
           "reopen holds the acknowledged batches (and at most the "
           "failed one): last " +
               std::to_string(last));
    auto ents = s->entries(1, last + 1, UINT64_MAX);
    bool intact = ents.is_ok() && ents->size() == last;
    for (raft::Index i = 1; intact && i <= last; i++)
        intact = (*ents)[i - 1] == testing::make_entry(i, 1, 300);
    expect(intact, "every recovered entry is intact");
    // The commit travels in the log with its batch: when the failed batch's entries
    // survived (its write reached the file before the sync failed), so may its commit.
    const raft::HardState hs = s->initial_state().hard;
    expect(hs == raft::HardState{1, 1, 20} || (last == 40 && hs == raft::HardState{1, 1, 30}),
           "hard state is the last acknowledged, or the failed batch's with its entries");
    expect(s->persist(batch(last + 1), std::nullopt).is_ok(), "a reopened log accepts writes");
    return failures == 0 ? 0 : 1;
}

// Short writes (libfiu reduces the byte count of pwritev): the log loops until all is
// written, so nothing fails and everything reads back.
int short_scenario(const std::string& dir) {
    // Counts the pwritev calls the log makes, to prove the writes really came back short.
    FaultEnv counting(Env::posix());
    int writes = 0;
    counting.set_hook([&](std::string_view op, const std::string&) {
        if (op == "write") writes++;
        return 0;
    });
    {
        auto s = open_or_die(dir, &counting);
        writes = 0;
        fiu_enable("posix/io/rw/pwritev/reduce", 1, nullptr, 0);
        for (raft::Index f = 1; f <= 91; f += 10)
            expect(s->persist(batch(f), std::nullopt).is_ok(), "batch under short writes");
        fiu_disable("posix/io/rw/pwritev/reduce");
    }
    expect(writes > 10, "the 10 batches took " + std::to_string(writes) + " pwritev calls");
    auto s = open_or_die(dir);
    auto ents = s->entries(1, 101, UINT64_MAX);
    bool intact = ents.is_ok() && ents->size() == 100;
    for (raft::Index i = 1; intact && i <= 100; i++)
        intact = (*ents)[i - 1] == testing::make_entry(i, 1, 300);
    expect(intact, "all 100 entries written with short writes read back intact");
    return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s fdatasync|pwritev|enospc|short DIR\n", argv[0]);
        return 2;
    }
    fiu_init(0);
    const std::string what = argv[1], dir = argv[2];
    if (what == "fdatasync") return fail_scenario(dir, "posix/io/sync/fdatasync", EIO, "fdatasync");
    if (what == "pwritev") return fail_scenario(dir, "posix/io/rw/pwritev", EIO, "write");
    if (what == "enospc")
        return fail_scenario(dir, "posix/io/rw/pwritev", ENOSPC, "No space left on device");
    if (what == "short") return short_scenario(dir);
    std::fprintf(stderr, "unknown scenario %s\n", what.c_str());
    return 2;
}
