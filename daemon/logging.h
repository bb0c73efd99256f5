// Logging set-up: one spdlog logger, installed as spdlog's default, that every part of
// raftd logs through (spdlog::info(...)).
//
// Owns: the sink (stderr or a log file that SIGHUP reopens) and the line format: the node id
// in every line; timestamps unless journald adds its own; under systemd a syslog priority
// prefix ("<6>") that journald turns into the entry's priority.
// Never: buffer lines (each line is one write(2), so three nodes sharing a terminal in
// `make run` never interleave inside a line) or throw out of a logging call.
//
// Thread rules: init_logging() and reopen_logs() on the loop thread; logging itself from any
// thread (the sink holds a mutex).
#pragma once

#include <string>
#include <string_view>

#include "daemon/config.h"
#include "raft/status.h"

namespace raftd::daemon {

enum class LogStyle {
    kText,     // "2024-05-01T12:00:00.123 [info] n1: message"
    kPlain,    // "[info] n1: message"
    kJournal,  // "<6>[info] n1: message"
};

// True when stderr goes to journald: systemd sets JOURNAL_STREAM for services whose output
// it collects, and INVOCATION_ID for every unit it starts.
bool under_systemd();

// Resolves log_format (auto|text|plain|journal): `auto` is journal under systemd when
// logging to stderr, text otherwise.
LogStyle resolve_log_style(std::string_view format, bool to_file, bool systemd);

// Installs the logger described by cfg (log_level, log_file, log_format, node_id). A log file
// that cannot be opened is an error: the caller reports it and exits.
Status init_logging(const Config& cfg);

// SIGHUP: reopens the log file at its configured path, so a rotator can rename it first.
// Without a log file this does nothing. On failure the old file stays in use.
Status reopen_logs();

}  // namespace raftd::daemon
