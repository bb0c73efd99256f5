// A check LevelDB does not make: that meta/'s current log file is still there.
//
// LevelDB replays the log files it finds on open and never asks whether the one its
// MANIFEST names is among them; a lost log file silently takes back every write since meta/
// was last opened (term, vote, commit). This reads the MANIFEST named by CURRENT (LevelDB's
// log format of VersionEdit records) for the newest log number and looks for that file.
// Owns: nothing; reads meta/ only, never writes it. Never judges anything else about meta/:
// whatever it cannot parse it leaves to LevelDB's own checks (paranoid_checks).
// Thread rules: none (pure function of the directory).
#pragma once

#include <string>

#include "raft/status.h"

namespace raftd::wal {

// Corruption naming the missing file when meta/'s MANIFEST names a log file that is not
// there; ok otherwise (also when there is no CURRENT or MANIFEST, or it cannot be parsed).
Status check_leveldb_log_present(const std::string& meta_dir);

}  // namespace raftd::wal
