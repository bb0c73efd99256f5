// Config: every setting raftd reads, and the one option table that defines them.
//
// Owns: the Config value, the option table (name, kind, default, bounds, prose), and the
// three ways a value gets in: the embedded defaults, a TOML file, and text from a flag. The
// same table renders `--help`, docs/configuration.md and the example config, so a setting
// cannot exist in one place and be missing from another.
// Never: touch the disk beyond reading the config file it is given, or throw: toml++ is used
// without exceptions and every problem comes back as a Status naming file, line, key and why.
//
// Thread rules: plain values; the table is immutable after static initialisation.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace raftd::daemon {

struct Config {
    // Identity
    uint64_t node_id = 0;
    std::string cluster;
    std::string data_dir;
    // Client socket
    std::string socket;
    uint32_t socket_mode = 0;
    std::string socket_group;
    std::vector<uint32_t> allowed_uids;
    std::vector<uint32_t> allowed_gids;
    // Peers and membership
    std::string listen;
    std::string advertise;
    std::vector<raft::Member> initial_cluster;
    bool join = false;
    uint64_t send_queue_bytes = 0;
    uint64_t reconnect_min_ms = 0;
    uint64_t reconnect_max_ms = 0;
    uint64_t snapshot_chunk_bytes = 0;
    std::string peer_tls_cert;
    std::string peer_tls_key;
    std::string peer_tls_ca;
    std::string peer_tls_crl;
    // Metrics and health over HTTP
    std::string metrics_listen;
    // Raft timing and flow control
    uint64_t tick_ms = 0;
    uint64_t election_ticks = 0;
    uint64_t heartbeat_ticks = 0;
    bool pre_vote = false;
    bool check_quorum = false;
    bool lease_read = false;
    uint64_t max_inflight_msgs = 0;
    uint64_t max_inflight_bytes = 0;
    uint64_t max_append_bytes = 0;
    uint64_t max_uncommitted_bytes = 0;
    // Limits shared with clients
    uint64_t max_frame = 0;
    uint64_t max_entry = 0;
    uint64_t request_timeout_ms = 0;
    uint64_t leader_wait_requests = 0;
    uint64_t leader_wait_bytes = 0;
    uint64_t max_client_sessions = 0;
    uint64_t client_seq_window = 0;
    // Storage
    uint64_t wal_segment_size = 0;
    uint64_t wal_cache_bytes = 0;
    uint64_t log_keep_entries = 0;
    // Logging
    std::string log_level;
    std::string log_file;
    std::string log_format;

    // Not an option: what reading the settings had to say without refusing them (a removed
    // option named in the file or on the command line). Logged as warnings at start.
    std::vector<std::string> warnings;

    // The address peers dial to reach this node: `advertise`, else `listen`.
    const std::string& advertise_addr() const { return advertise.empty() ? listen : advertise; }
    // The members a brand-new cluster starts with: `initial_cluster`, or this node alone
    // (the embedded default is a single-node cluster).
    std::vector<raft::Member> bootstrap_members() const;
};

// What a value looks like; decides how TOML and flag text are read and how docs show it.
enum class Kind {
    kBool,     // true / false
    kUint,     // a non-negative integer
    kBytes,    // an integer or a string with a binary unit: "64MiB", "512KiB", "1GiB"
    kMode,     // file permission bits: TOML 0o660 or the string "0660"
    kString,   // free text (paths, names)
    kEnum,     // one of `choices`
    kAddr,     // "host:port"
    kMembers,  // list of "id=host:port"
    kIds,      // list of numeric user or group ids
};

using Field =
    std::variant<bool Config::*, uint64_t Config::*, uint32_t Config::*, std::string Config::*,
                 std::vector<raft::Member> Config::*, std::vector<uint32_t> Config::*>;

struct OptionSpec {
    std::string_view name;   // TOML key; the flag is --name with '_' as '-'
    std::string_view group;  // heading in --help and the docs
    Kind kind;
    Field field;
    std::string_view def;  // default, written as a TOML value ("./raftd-data", 100, "16MiB")
    uint64_t min = 0;      // bounds for kUint/kBytes/kMode (inclusive)
    uint64_t max = UINT64_MAX;
    std::string_view choices;  // kEnum: "a|b|c"
    std::string_view alias;    // an extra flag name ("peers" for initial_cluster), or empty
    std::string_view help;     // one line for --help
    std::string_view doc;      // the paragraph for docs/configuration.md and the example
    std::string_view example;  // value shown (uncommented) in the systemd example, or empty
};

// The table, in documentation order.
std::span<const OptionSpec> options();
const OptionSpec* find_option(std::string_view name);

// An option raftd no longer has. A file key or flag that still names one is ignored with a
// warning (Config::warnings) instead of refused like an unknown key: a setting that has no
// effect any more should not stop a node from starting after an upgrade.
struct RemovedOption {
    std::string_view name;
    std::string_view why;  // what raftd does instead, for the warning and the docs
};
std::span<const RemovedOption> removed_options();
const RemovedOption* find_removed_option(std::string_view name);

// The embedded defaults: a single-node cluster in ./raftd-data with its socket at
// ./raftd.sock.
Config default_config();

// Overlays the keys present in TOML `text` onto `cfg`. `source` names the file in errors:
// "raftd.toml:7: key 'max_frame': must be at least 4KiB (got 12)". Unknown keys, tables and
// values of the wrong type are errors; a removed option adds to cfg.warnings. On error `cfg` may be
// partly updated; callers discard it.
Status apply_toml(std::string_view text, std::string_view source, Config& cfg);
// Reads `path` and applies it as above.
Status apply_file(const std::string& path, Config& cfg);
// Sets one option from flag text (lists comma-separated). `origin` names it in errors.
Status apply_text(const OptionSpec& opt, std::string_view text, std::string_view origin,
                  Config& cfg);

// Rules that span options (heartbeat shorter than the election timeout, this node listed in
// initial_cluster, sizes that fit a frame, ...). Per-option bounds are checked when set.
Status validate(const Config& cfg);

// The current value of `opt` in `cfg`, as TOML ("16MiB", 0o660, ["1=h:7001"]).
std::string render_value(const Config& cfg, const OptionSpec& opt);
// The value as flag text, as --help shows defaults ("16MiB", 0660, 1=h:7001,2=h:7002).
std::string render_flag_value(const Config& cfg, const OptionSpec& opt);

// docs/configuration.md, generated from the table; a test diffs it with the committed file.
std::string render_reference_markdown();
// systemd/raftd.toml: every key with its prose, systemd paths uncommented.
std::string render_example_toml();
// The effective configuration as a TOML file (raftd --print-config).
std::string render_effective_toml(const Config& cfg);

// "host:port" split; IPv6 hosts in brackets ("[::1]:7001").
struct HostPort {
    std::string host;
    uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view s);

// Sizes: "64MiB" -> 67108864; plain digits are bytes.
Result<uint64_t> parse_bytes(std::string_view s);
std::string format_bytes(uint64_t n);

}  // namespace raftd::daemon
