#include "raft/config.h"

#include <string>

namespace raftd::raft {

Status Config::validate() const {
    if (id == kNoNode) return Status::invalid_argument("config: id must not be 0");
    if (heartbeat_tick < 1) return Status::invalid_argument("config: heartbeat_tick must be >= 1");
    if (election_tick <= heartbeat_tick) {
        return Status::invalid_argument("config: election_tick (" + std::to_string(election_tick) +
                                        ") must be greater than heartbeat_tick (" +
                                        std::to_string(heartbeat_tick) + ")");
    }
    if (max_inflight_msgs < 1) {
        return Status::invalid_argument("config: max_inflight_msgs must be >= 1");
    }
    if (max_size_per_msg < 1)
        return Status::invalid_argument("config: max_size_per_msg must be >= 1");
    if (max_snapshot_chunk_bytes < 1) {
        return Status::invalid_argument("config: max_snapshot_chunk_bytes must be >= 1");
    }
    if (lease_read && !check_quorum) {
        // Without check_quorum a deposed leader never learns it lost its lease, and followers
        // do not refuse votes while a leader is alive: lease reads would be stale.
        return Status::invalid_argument("config: lease_read requires check_quorum");
    }
    return Status::ok();
}

}  // namespace raftd::raft
