// raftd C++ client: talks to one raftd node over its Unix socket (docs/protocol.md).
//
// Two ways to use it:
//   - synchronous: `auto r = c->propose("x"); if (!r) ... r.error().code ...`
//   - callback-based asynchronous, with pipelining: `c->propose_async("x", cb)` returns at
//     once; callbacks run inside poll()/wait_all()/any synchronous call, on the calling
//     thread. Many requests may be in flight; replies may come in any order.
// Subscriptions deliver each stream event to a callback, also from inside poll().
//
// Owns: one socket and its buffers; the table of requests in flight.
// Never: retry a request by itself (a retried proposal could commit twice), throw, or
// touch daemon internals: only the public protocol.
//
// Thread rules: a Client is used by one thread at a time. Callbacks must not destroy the
// Client; they may issue further requests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "raftd/error_codes.h"

namespace raftd::client {

// The protocol's error codes (docs/protocol.md 5), plus two that only the client produces:
// kConnection (the socket failed or the server closed it) and kTimeout is also used when
// a synchronous call's local deadline passes.
enum class ErrorCode {
#define RAFTD_CLIENT_CODE(name, wire) name,
    RAFTD_PROTOCOL_ERROR_CODES(RAFTD_CLIENT_CODE)
#undef RAFTD_CLIENT_CODE
        kConnection,
};
// "BAD_FRAME", ..., "CONNECTION".
std::string_view error_code_name(ErrorCode c);

struct Leader {
    uint64_t node = 0;
    std::string addr;
};

struct Error {
    ErrorCode code = ErrorCode::kInternal;
    std::string code_name;  // the wire string (an unknown code maps to kInternal)
    std::string message;
    std::optional<Leader> leader;
    std::string to_string() const;  // "UNAVAILABLE: no leader (leader 2 at 10.0.0.2:7000)"
};
// An error found on the client's side (code_name from the code), e.g. by the apply loop.
Error make_error(ErrorCode c, std::string message);

struct Unit {};

// A value or an Error.
template <typename T>
class Result {
  public:
    Result(T v) : v_(std::move(v)) {}      // NOLINT: implicit on purpose
    Result(Error e) : v_(std::move(e)) {}  // NOLINT
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

struct Progress {
    uint64_t match = 0, next = 0;
    std::string state;
};
struct Member {
    uint64_t node = 0;
    std::string addr;
    bool voter = false;
    bool outgoing = false;
    std::optional<Progress> progress;
};
struct Members {
    std::vector<Member> members;
    bool joint = false;
};
struct Hello {
    uint64_t version = 0, node_id = 0;
    std::string cluster;
    uint64_t max_frame = 0, max_entry = 0;
};
struct Proposed {
    uint64_t index = 0, term = 0;
};
struct NodeStatus {
    uint64_t node_id = 0;
    std::string cluster, role;
    uint64_t term = 0, leader = 0, commit = 0, first_index = 0, last_index = 0, snapshot_index = 0;
    uint64_t wal_syncs = 0;  // fsync-family calls for durability since the node started
    Members members;
    std::string version;
};
struct MemberSpec {
    uint64_t node = 0;
    std::string addr;
    bool learner = false;
};

// One event of a subscription.
struct Event {
    enum class Kind { kEntry, kSnapshot, kEnd };
    Kind kind = Kind::kEntry;
    uint64_t sub = 0;
    uint64_t index = 0, term = 0;
    std::string type;  // entries: "data" | "noop" | "config"
    std::string data;
    uint64_t offset = 0;             // snapshot chunks
    bool done = false;               // snapshot chunks: the last one
    std::optional<Members> members;  // config entries and snapshot chunks
    std::optional<Error> error;      // kEnd: why the server ended it
};

struct Options {
    // Deadline of each synchronous call; 0 waits forever.
    int timeout_ms = 60000;
    // Sent in hello (and logged by raftd); empty: no hello is sent at connect.
    std::string name = "raftd-cpp";
};

// The socket path to use: `flag` when non-empty, else $RAFTD_SOCKET, else "./raftd.sock".
std::string default_socket(const std::string& flag = "");

class Client {
  public:
    template <typename T>
    using Callback = std::function<void(Result<T>)>;
    using EventFn = std::function<void(const Event&)>;

    // Connects (and sends hello when options.name is set, checking the version).
    static Result<std::unique_ptr<Client>> connect(const std::string& socket_path,
                                                   Options options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // What the server said at hello (zeros when no hello was sent).
    const Hello& server() const;

    // ---- synchronous ----------------------------------------------------------------------
    Result<Hello> hello();
    Result<Unit> ping();
    Result<Proposed> propose(std::string_view data);
    // lease: may be answered from the leader's lease (docs/protocol.md 6.5).
    Result<uint64_t> read_index(bool lease = false);
    Result<NodeStatus> status();
    Result<Members> members();
    Result<Members> add_member(uint64_t node, const std::string& addr, bool learner = false);
    Result<Members> remove_member(uint64_t node);
    Result<Members> promote(uint64_t node);
    Result<Members> demote(uint64_t node);
    Result<Members> change_members(const std::vector<MemberSpec>& add,
                                   const std::vector<uint64_t>& remove);
    Result<uint64_t> transfer_leader(uint64_t to);
    Result<uint64_t> campaign();
    // Uploads `data` as the application snapshot through `index`, in chunks of at most
    // chunk_bytes (0: the server's max_entry), pipelined. Returns the snapshot's index.
    Result<uint64_t> snapshot(uint64_t index, std::string_view data, size_t chunk_bytes = 0);

    // ---- asynchronous (callbacks run inside poll()/wait_all()/synchronous calls) ----------
    void ping_async(Callback<Unit> cb);
    void propose_async(std::string_view data, Callback<Proposed> cb);
    void read_index_async(Callback<uint64_t> cb);
    void status_async(Callback<NodeStatus> cb);

    // ---- subscriptions -----------------------------------------------------------------------
    // Starts a commit stream from `from` (nullopt: only new entries). Returns the
    // subscription id once the server accepted it; events then arrive through on_event.
    Result<uint64_t> subscribe(std::optional<uint64_t> from, EventFn on_event);
    Result<Unit> unsubscribe(uint64_t sub);

    // ---- driving I/O --------------------------------------------------------------------------
    // Reads what arrives within timeout_ms (0: only what is ready; -1: until something
    // arrives) and runs the callbacks it completes. Error when the connection is gone.
    Result<Unit> poll(int timeout_ms);
    // Polls until no request is in flight (subscriptions do not count) or timeout_ms.
    Result<Unit> wait_all(int timeout_ms = -1);
    size_t in_flight() const;
    // The socket, for callers with their own poll loop (wait for POLLIN, then poll(0)).
    int fd() const;

    struct Impl;

  private:
    explicit Client(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace raftd::client
