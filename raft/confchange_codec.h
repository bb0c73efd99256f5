// The bytes of a config entry (a ConfChange) and of a ConfState, as specified byte by byte in
// docs/raft.md ("Config entry encoding"). The daemon decodes committed config entries with
// these to learn peer addresses; the WAL may store a ConfState with them.
//
// Owns: a small explicit little-endian format with a magic byte and a version.
// Never: accepts trailing bytes, unknown versions or counts the input cannot hold; a decode
// error leaves the output untouched.
// Thread rules: none (pure).
#pragma once

#include <string>
#include <string_view>

#include "raft/confchange.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raftd::raft {

std::string encode_conf_change(const ConfChange& cc);
Result<ConfChange> decode_conf_change(std::string_view bytes);

std::string encode_conf_state(const ConfState& cs);
Result<ConfState> decode_conf_state(std::string_view bytes);

}  // namespace raftd::raft
