// The option table: the single place a raftd setting is defined. Adding a row here adds the
// TOML key, the flag, the --help line, the docs/configuration.md section and the example
// config entry; `make config-docs` rewrites the two committed files from it.
#include <array>

#include "daemon/config.h"

namespace raftd::daemon {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

// clang-format off
const std::array kOptions = {
// ---- Identity ---------------------------------------------------------------------------
OptionSpec{"node_id", "Identity", Kind::kUint, &Config::node_id, "1", 1, UINT64_MAX, "", "",
  "This node's id within its cluster (1 or more)",
  "A positive integer naming this node inside its cluster. It must appear in "
  "`initial_cluster` when that list is given, and must never be reused for a different "
  "machine: a peer that answers with another id than the one dialled is refused.",
  "1"},
OptionSpec{"cluster", "Identity", Kind::kString, &Config::cluster, "\"raftd\"", 0, 0, "", "",
  "Cluster name; data dirs and peers of another cluster are refused",
  "The name of the cluster this node belongs to: 1 to 64 letters, digits, '.', '_' or '-'. "
  "It is recorded in the data directory when the node first starts and sent in every peer "
  "handshake, so a node refuses to start on a data directory made for another cluster and "
  "refuses peers that announce another cluster. Give each cluster on a network its own name.",
  "\"raftd\""},
OptionSpec{"data_dir", "Identity", Kind::kString, &Config::data_dir, "\"./raftd-data\"", 0, 0,
  "", "",
  "Directory for the write-ahead log, snapshots and metadata",
  "Where this node keeps its write-ahead log, snapshots and metadata; created when missing. "
  "A directory that already holds state is recovered as it is (and `initial_cluster` is then "
  "ignored). Only one raftd may use a directory at a time.",
  "\"/var/lib/raftd\""},

// ---- Client socket ----------------------------------------------------------------------
OptionSpec{"socket", "Client socket", Kind::kString, &Config::socket, "\"./raftd.sock\"", 0, 0,
  "", "",
  "Path of the Unix socket applications connect to",
  "Path of the Unix socket that applications connect to (at most 107 bytes, the limit of a "
  "Unix socket address).",
  "\"/run/raftd/raftd.sock\""},
OptionSpec{"socket_mode", "Client socket", Kind::kMode, &Config::socket_mode, "0o660", 0, 0777,
  "", "",
  "Permission bits of the socket file",
  "Permission bits of the socket file, as an octal number. With the default only the user "
  "raftd runs as and the members of the socket's group can connect.",
  ""},
OptionSpec{"socket_group", "Client socket", Kind::kString, &Config::socket_group, "\"\"", 0, 0,
  "", "",
  "Group owning the socket file (empty: raftd's own group)",
  "Name of the group that owns the socket file. Empty keeps the group of the raftd process.",
  ""},
OptionSpec{"allowed_uids", "Client socket", Kind::kIds, &Config::allowed_uids, "[]", 0, 0, "",
  "",
  "User ids allowed to connect (empty: any the file mode lets in)",
  "Numeric user ids allowed to connect, checked with the peer credentials of every new "
  "connection on top of the file mode. Empty (with `allowed_gids` empty too) allows every "
  "user the file mode lets in. raftd's own user is not implied: list it too if tools such "
  "as raftctl run as that user.",
  ""},
OptionSpec{"allowed_gids", "Client socket", Kind::kIds, &Config::allowed_gids, "[]", 0, 0, "",
  "",
  "Group ids allowed to connect (empty: any the file mode lets in)",
  "Numeric group ids allowed to connect, checked like `allowed_uids` against the primary group "
  "in the peer credentials of every new connection. When either list is non-empty, a "
  "connection is accepted if its user is in `allowed_uids` or its primary group is in "
  "`allowed_gids`; others are disconnected at once (logged at warn).",
  ""},

// ---- Peers ------------------------------------------------------------------------------
OptionSpec{"listen", "Peers", Kind::kAddr, &Config::listen, "\"127.0.0.1:7000\"", 0, 0, "", "",
  "Address the peer transport listens on (host:port)",
  "Address the peer transport listens on, as host:port (an IPv6 host in brackets). Use "
  "0.0.0.0:PORT or [::]:PORT to listen on every interface. The port must be free when raftd "
  "starts.",
  "\"0.0.0.0:7000\""},
OptionSpec{"advertise", "Peers", Kind::kAddr, &Config::advertise, "\"\"", 0, 0, "", "",
  "Address peers use to reach this node (empty: listen)",
  "Address other nodes use to reach this one, when it differs from `listen` (for example when "
  "listening on 0.0.0.0). Empty means the `listen` address. It is this node's address in the "
  "membership when it bootstraps a single-node cluster.",
  ""},
OptionSpec{"initial_cluster", "Peers", Kind::kMembers, &Config::initial_cluster, "[]", 0, 0, "",
  "peers",
  "Members of a new cluster: id=host:port,...",
  "The voting members a new cluster starts with, as \"id=host:port\" entries. Every node of "
  "the new cluster is given the same list and finds its own `node_id` in it. The list is read "
  "only when the data directory is empty: once a node has state, membership changes go "
  "through the running cluster and this list is ignored. A node with an empty data directory "
  "bootstraps only once every other member of the list has answered it, so a new cluster "
  "starts when all of them run; a member that lost its data directory is refused by its "
  "peers instead and stops (operations.md, \"A member lost its data directory\"). Empty starts "
  "a single-node cluster made of this node at its `advertise` address.",
  "[\"1=10.0.0.1:7000\", \"2=10.0.0.2:7000\", \"3=10.0.0.3:7000\"]"},
OptionSpec{"join", "Peers", Kind::kBool, &Config::join, "false", 0, 0, "", "",
  "Start empty and wait to be added to a running cluster",
  "Set on a node being added to a cluster that is already running: it does not bootstrap "
  "from `initial_cluster` but starts with an empty log and waits for the leader to contact "
  "it, which happens once an operator has added it through an existing member (usually as a "
  "learner, promoted after it caught up). Ignored when the data directory already holds "
  "state.",
  ""},
OptionSpec{"send_queue_bytes", "Peers", Kind::kBytes, &Config::send_queue_bytes, "\"8MiB\"",
  64 * KiB, 4 * GiB, "", "",
  "Bytes queued for one peer before messages to it are dropped",
  "Bytes of messages queued for one peer that is not keeping up. Beyond it, messages to that "
  "peer are dropped and Raft sends again what is still needed once the peer catches up, so "
  "a slow or unreachable peer never makes memory grow without bound.",
  ""},
OptionSpec{"reconnect_min_ms", "Peers", Kind::kUint, &Config::reconnect_min_ms, "100", 1,
  60000, "", "",
  "First delay before redialling a failed peer (ms)",
  "Delay before redialling a peer whose connection failed or closed. It doubles after each "
  "failed attempt, up to `reconnect_max_ms`, with random jitter so that nodes do not redial "
  "in lockstep.",
  ""},
OptionSpec{"reconnect_max_ms", "Peers", Kind::kUint, &Config::reconnect_max_ms, "5000", 1,
  600000, "", "",
  "Longest delay between redial attempts (ms)",
  "Upper bound of the redial delay described under `reconnect_min_ms`.",
  ""},
OptionSpec{"snapshot_chunk_bytes", "Peers", Kind::kBytes, &Config::snapshot_chunk_bytes,
  "\"1MiB\"", 4 * KiB, 64 * MiB, "", "",
  "Chunk size when streaming a snapshot to a peer",
  "A snapshot sent to a follower that fell behind the compacted log is streamed in chunks of "
  "this size, with its own flow control, so that a transfer never fills the send queue or "
  "delays heartbeats.",
  ""},
OptionSpec{"peer_tls_cert", "Peers", Kind::kString, &Config::peer_tls_cert, "\"\"", 0, 0, "", "",
  "PEM certificate this node presents to peers (empty: plaintext peers)",
  "PEM file with this node's certificate (and any intermediate CAs after it) for mutual TLS "
  "1.3 on every peer connection. It must carry the SAN URI raftd://CLUSTER/node/ID of this "
  "node: a peer's certificate must name the node id its handshake announces, so one node's "
  "certificate cannot speak for another. Set together with `peer_tls_key` and `peer_tls_ca`; "
  "then peers without TLS are refused. Re-read on SIGHUP (operations.md, section 11). Empty: "
  "peers talk plaintext TCP.",
  ""},
OptionSpec{"peer_tls_key", "Peers", Kind::kString, &Config::peer_tls_key, "\"\"", 0, 0, "", "",
  "PEM private key of peer_tls_cert",
  "PEM file with the unencrypted private key of `peer_tls_cert`; keep it readable only by "
  "the user raftd runs as. Re-read on SIGHUP.",
  ""},
OptionSpec{"peer_tls_ca", "Peers", Kind::kString, &Config::peer_tls_ca, "\"\"", 0, 0, "", "",
  "PEM CA certificates that peers' certificates must chain to",
  "PEM file with the CA certificates a peer's certificate must chain to. Use a CA that signs "
  "only this cluster's nodes. Re-read on SIGHUP; several CAs in the file let a rotation to "
  "a new CA happen without downtime.",
  ""},
OptionSpec{"peer_tls_crl", "Peers", Kind::kString, &Config::peer_tls_crl, "\"\"", 0, 0, "", "",
  "PEM certificate revocation list (empty: none)",
  "PEM file with the CA's certificate revocation list: peers whose certificate it lists are "
  "refused. When set it must hold a CRL of the CA that issued each peer's certificate. "
  "Re-read on SIGHUP, so a revocation takes effect for every new connection.",
  ""},

// ---- Metrics ----------------------------------------------------------------------------
OptionSpec{"metrics_listen", "Metrics", Kind::kAddr, &Config::metrics_listen, "\"\"", 0, 0, "",
  "",
  "HTTP address for /metrics, /health and /status (empty: off)",
  "Address (host:port) of an HTTP listener serving `/metrics` in the Prometheus text format, "
  "`/health` (200 when this node knows a leader and its storage answers, else 503 with a "
  "one-line reason) and `/status` (the `status` reply as JSON); docs/metrics.md lists every "
  "metric. Empty (the default) serves no HTTP. The endpoints have no authentication: bind "
  "a loopback or otherwise private address, such as 127.0.0.1:9380.",
  ""},

// ---- Raft -------------------------------------------------------------------------------
OptionSpec{"tick_ms", "Raft", Kind::kUint, &Config::tick_ms, "100", 1, 10000, "", "",
  "Length of one Raft tick (ms)",
  "Length of one Raft tick in milliseconds. Election timeouts and heartbeat intervals are "
  "counted in ticks.",
  ""},
OptionSpec{"election_ticks", "Raft", Kind::kUint, &Config::election_ticks, "10", 2, 100000, "",
  "",
  "Ticks without a leader before a follower campaigns",
  "Ticks a follower waits without hearing from a leader before it starts an election; the "
  "actual timeout is drawn at random between this and twice this. With the defaults, one to "
  "two seconds.",
  ""},
OptionSpec{"heartbeat_ticks", "Raft", Kind::kUint, &Config::heartbeat_ticks, "1", 1, 100000,
  "", "",
  "Ticks between leader heartbeats",
  "Ticks between the leader's heartbeats. Must be smaller than `election_ticks`; a tenth of "
  "it is usual.",
  ""},
OptionSpec{"pre_vote", "Raft", Kind::kBool, &Config::pre_vote, "true", 0, 0, "", "",
  "Run a pre-vote round before each election",
  "Run a pre-vote round before a real election, so that a node coming back from a partition "
  "does not depose a healthy leader by raising the term (Raft thesis, section 9.6).",
  ""},
OptionSpec{"check_quorum", "Raft", Kind::kBool, &Config::check_quorum, "true", 0, 0, "", "",
  "Leader steps down when it loses touch with a quorum",
  "A leader that has not heard from a quorum during an election timeout steps down, so that "
  "clients of a partitioned leader find out quickly instead of waiting.",
  ""},
OptionSpec{"lease_read", "Raft", Kind::kBool, &Config::lease_read, "false", 0, 0, "", "",
  "Let read_index with lease answer from the leader's lease",
  "Lets a `read_index` request that asks for it (`\"lease\": true`) be answered from the "
  "leader's lease, without a heartbeat round, while a quorum acknowledged the leader within "
  "the last `election_ticks` - 1 ticks. Safe only if the nodes' clocks run at rates that "
  "differ by less than one tick per election timeout, and it needs `check_quorum`; a node "
  "with it also ignores vote requests for one election timeout after it starts. Give every "
  "node the same value. Off, every read is confirmed by a quorum round (docs/protocol.md 6.5).",
  ""},
OptionSpec{"max_inflight_msgs", "Raft", Kind::kUint, &Config::max_inflight_msgs, "256", 1,
  65536, "", "",
  "AppendEntries in flight to one follower",
  "AppendEntries messages the leader sends to one follower ahead of its acknowledgements.",
  ""},
OptionSpec{"max_inflight_bytes", "Raft", Kind::kBytes, &Config::max_inflight_bytes, "\"32MiB\"",
  0, 16 * GiB, "", "",
  "Entry bytes in flight to one follower (0: no byte limit)",
  "Bytes of entries the leader sends to one follower ahead of its acknowledgements. 0 leaves "
  "only `max_inflight_msgs` as the limit.",
  ""},
OptionSpec{"max_append_bytes", "Raft", Kind::kBytes, &Config::max_append_bytes, "\"1MiB\"",
  1 * KiB, 1 * GiB, "", "",
  "Entry bytes in one AppendEntries message",
  "Upper bound on the entry bytes carried by one AppendEntries message; a single larger entry "
  "is still sent, alone.",
  ""},
OptionSpec{"max_uncommitted_bytes", "Raft", Kind::kBytes, &Config::max_uncommitted_bytes,
  "\"64MiB\"", 0, 64 * GiB, "", "",
  "Uncommitted entry bytes the leader accepts (0: no limit)",
  "Bytes of proposed but not yet committed entries the leader holds. Beyond it new proposals "
  "are refused with BUSY until commits catch up. 0 removes the limit.",
  ""},

// ---- Limits -----------------------------------------------------------------------------
OptionSpec{"max_frame", "Limits", Kind::kBytes, &Config::max_frame, "\"16MiB\"", 64 * KiB,
  1 * GiB, "", "",
  "Largest frame on the client socket and from peers",
  "Largest frame accepted on the client socket and from peers, not counting its 4-byte "
  "length prefix. Clients learn it from `hello`.",
  ""},
OptionSpec{"max_entry", "Limits", Kind::kBytes, &Config::max_entry, "\"1MiB\"", 1, 1 * GiB, "",
  "",
  "Largest entry payload a client may propose",
  "Largest payload of one proposed entry. It must leave room for the frame around it: at most "
  "`max_frame` minus 4KiB.",
  ""},
OptionSpec{"request_timeout_ms", "Limits", Kind::kUint, &Config::request_timeout_ms, "5000", 0,
  3600000, "", "",
  "How long a request waits for a leader unless it says (timeout_ms)",
  "How long a proposal, `read_index`, membership change or leader transfer that finds no "
  "leader known waits for one (an election) before it is answered UNAVAILABLE with nothing "
  "done, when the request carries no `timeout_ms` of its own. 0 answers UNAVAILABLE at once.",
  ""},
OptionSpec{"leader_wait_requests", "Limits", Kind::kUint, &Config::leader_wait_requests, "1024",
  1, 1000000, "", "",
  "Requests that may wait for a leader at once",
  "Requests, over all clients, that may wait for a leader at the same time; one more is "
  "answered BUSY at once.",
  ""},
OptionSpec{"leader_wait_bytes", "Limits", Kind::kBytes, &Config::leader_wait_bytes, "\"16MiB\"",
  1 * KiB, 16 * GiB, "", "",
  "Proposal bytes that may wait for a leader at once",
  "Bytes of the requests waiting for a leader, over all clients: each proposal's data plus "
  "128 bytes per request. A request that would go beyond it is answered BUSY at once.",
  ""},

OptionSpec{"max_client_sessions", "Limits", Kind::kUint, &Config::max_client_sessions, "1024",
  1, 1000000, "", "",
  "Client sessions remembered for exactly-once proposals",
  "Client sessions (the `client` ids of proposals with a session key) whose recent sequence "
  "numbers each node keeps, so that a retried proposal commits at most once. Beyond it the "
  "session whose last entry committed longest ago is evicted, and its retries are answered "
  "EXPIRED (docs/protocol.md, \"Exactly-once proposals\"). Each session costs about "
  "24 bytes per remembered sequence number. Give every member the same value.",
  ""},
OptionSpec{"client_seq_window", "Limits", Kind::kUint, &Config::client_seq_window, "256", 1,
  65536, "", "",
  "Sequence numbers remembered per client session",
  "How many of a client session's highest committed sequence numbers each node remembers. "
  "A retry of a lower one that fell out of the window is answered EXPIRED, so it must be at "
  "least the number of proposals a client keeps outstanding. Give every member the same value.",
  ""},

// ---- Storage ----------------------------------------------------------------------------
OptionSpec{"wal_segment_size", "Storage", Kind::kBytes, &Config::wal_segment_size, "\"64MiB\"",
  1 * MiB, 4 * GiB, "", "",
  "Size at which the write-ahead log starts a new segment",
  "Size at which the write-ahead log starts a new segment file. Compaction deletes whole "
  "segments, so smaller segments give disk space back sooner.",
  ""},
OptionSpec{"wal_cache_bytes", "Storage", Kind::kBytes, &Config::wal_cache_bytes, "\"64MiB\"", 0,
  64 * GiB, "", "",
  "Memory for recent entries, to serve peers without disk reads",
  "Memory holding the most recently written entries, so that followers and subscribers close "
  "to the tail are served without reading the disk.",
  ""},
OptionSpec{"log_keep_entries", "Storage", Kind::kUint, &Config::log_keep_entries, "10000", 0,
  UINT64_MAX, "", "",
  "Entries kept below the latest snapshot after compaction",
  "Entries kept in the log below the latest snapshot's index when the log is compacted, so "
  "that a follower only a little behind catches up from the log instead of receiving the "
  "whole snapshot.",
  ""},

// ---- Logging ----------------------------------------------------------------------------
OptionSpec{"log_level", "Logging", Kind::kEnum, &Config::log_level, "\"info\"", 0, 0,
  "trace|debug|info|warn|error|critical|off", "",
  "Least severe level logged",
  "Least severe level that is logged. `info` shows start-up, leadership and membership "
  "changes; `debug` adds connections and elections; `trace` shows every message.",
  ""},
OptionSpec{"log_file", "Logging", Kind::kString, &Config::log_file, "\"\"", 0, 0, "", "",
  "Append log lines to this file instead of stderr",
  "Append log lines to this file instead of writing them to stderr. The file is reopened on "
  "SIGHUP, so a log rotator can move it aside and then send SIGHUP.",
  ""},
OptionSpec{"log_format", "Logging", Kind::kEnum, &Config::log_format, "\"auto\"", 0, 0,
  "auto|text|plain|journal", "",
  "Line format: auto, text, plain or journal",
  "`text`: timestamp, level, node id and message. `plain`: the same without the timestamp. "
  "`journal`: `plain` behind a syslog priority prefix such as <6>, which journald turns into "
  "the entry's priority. `auto` is `journal` when raftd runs under systemd (JOURNAL_STREAM or "
  "INVOCATION_ID is set) and logs to stderr, `text` otherwise.",
  ""},
};

// Removed options, kept here so that a file written for an older raftd still starts.
const std::array kRemoved = {
RemovedOption{"persist_on_loop",
  "a batch is written on the event loop thread when the storage thread is idle and no "
  "client replies wait to be written, and on the storage thread otherwise"},
RemovedOption{"snapshot_keep",
  "the data directory holds one snapshot file, the current one; the previous one is deleted "
  "as soon as a newer one is current (docs/wal-format.md, 6.2)"},
RemovedOption{"leader_async_append",
  "the leader always writes its own entries on the storage thread while it keeps "
  "replicating, and counts them toward commit once durable"},
};
// clang-format on

}  // namespace

std::span<const RemovedOption> removed_options() {
    return kRemoved;
}

const RemovedOption* find_removed_option(std::string_view name) {
    for (const auto& r : kRemoved)
        if (r.name == name) return &r;
    return nullptr;
}

std::span<const OptionSpec> options() {
    return kOptions;
}

const OptionSpec* find_option(std::string_view name) {
    for (const auto& o : kOptions)
        if (o.name == name) return &o;
    return nullptr;
}

}  // namespace raftd::daemon
