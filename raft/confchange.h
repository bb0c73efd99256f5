// Membership changes: the ConfChange a client proposes and the rules that turn the current
// ConfState into the next one (joint consensus, learners, auto-leave; thesis 4.3).
//
// Owns: validation and the pure transition function. A change is applied by raft when its
// entry is applied, never when it is only appended.
// Never: looks at the log or progress; callers decide whether a change may be proposed now.
// Thread rules: none (pure).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::raft {

// Wire values are fixed (raft/confchange_codec.h).
enum class ConfChangeType : uint8_t {
    kAddNode = 1,     // make a voter (promotes a learner); addr updates the peer address
    kAddLearner = 2,  // make a learner (demotes a voter, through the joint state)
    kRemoveNode = 3,
};

struct ConfChangeSingle {
    ConfChangeType type = ConfChangeType::kAddNode;
    NodeId node = kNoNode;
    std::string addr;  // "host:port"; empty keeps the known address
    friend bool operator==(const ConfChangeSingle&, const ConfChangeSingle&) = default;
};

// How a change is carried out.
enum class ConfTransition : uint8_t {
    // One change touching at most one voter is applied directly; anything larger goes through
    // a joint configuration that is left automatically.
    kAuto = 0,
    // Always joint, left automatically once the joint configuration is applied.
    kJointImplicit = 1,
    // Always joint; stays joint until an explicit leave (an empty ConfChange) is proposed.
    kJointExplicit = 2,
};

struct ConfChange {
    ConfTransition transition = ConfTransition::kAuto;
    std::vector<ConfChangeSingle> changes;  // empty: leave the joint configuration
    friend bool operator==(const ConfChange&, const ConfChange&) = default;

    bool is_leave_joint() const { return changes.empty(); }
    bool enters_joint() const {
        return !changes.empty() && (transition != ConfTransition::kAuto || changes.size() > 1);
    }
};

// The configuration after applying `cc` to `cur`, or why it is not allowed:
// - entering a joint configuration from a joint one, or leaving when not joint;
// - a direct (non-joint) change touching more than one voter, except the very first
//   configuration of a new cluster (no voters yet), which may add any number at once;
// - a result without voters; node id 0.
Result<ConfState> apply_conf_change(const ConfState& cur, const ConfChange& cc);

// Whether `id` votes in `cs` (in either half of a joint configuration).
bool is_voter(const ConfState& cs, NodeId id);
// Whether `id` appears in `cs` at all (voter, learner or learner-to-be).
bool is_member(const ConfState& cs, NodeId id);
// Every id named by cs, sorted.
std::vector<NodeId> all_members(const ConfState& cs);
// The address recorded for id, or empty.
std::string address_of(const ConfState& cs, NodeId id);

std::string describe(const ConfState& cs);
std::string describe(const ConfChange& cc);

}  // namespace raftd::raft
