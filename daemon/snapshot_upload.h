// An application snapshot upload (the client `snapshot` op, docs/protocol.md 4.2): the
// chunks go to the store on the storage thread, in order, so the loop never waits for
// snapshot bytes to reach the disk.
//
// Owns: one upload's offset and its end; the shared "an upload is open" flag while open.
// Never: write on the loop thread, or run two uploads at once (the caller checks `busy`).
//
// Thread rules: its methods on the loop thread; the store calls they queue run on the
// storage thread (NodeHost::run_on_storage_thread), their completions back on the loop.
#pragma once

#include <memory>

#include "daemon/host.h"
#include "ipc/backend.h"

namespace raftd::daemon {

// Begins an upload of the snapshot `meta`; `*busy` is true until it finishes or aborts (the
// flag is shared because the upload may outlive its creator's view of it). `section` (the
// daemon's session section, docs/wal-format.md 6.1, or empty) is written before the
// application's chunks.
std::unique_ptr<ipc::SnapshotWriter> start_snapshot_upload(NodeHost& host, raft::SnapshotMeta meta,
                                                           std::shared_ptr<bool> busy,
                                                           std::string section = {});

// An upload at an index the node's latest snapshot already covers: the chunks are read and
// dropped, and finish() answers the index of the snapshot covering it then (docs/protocol.md:
// an application replaying from the start re-uploads what the node has; that is harmless).
std::unique_ptr<ipc::SnapshotWriter> start_covered_upload(NodeHost& host);

}  // namespace raftd::daemon
