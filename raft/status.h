// Status and Result<T>: how errors cross module boundaries in raftd.
//
// Owns: a small error value with a named kind and a message. Every module returns these
// instead of throwing, so nothing unwinds through a libuv callback or across the raft API.
// Never: allocate on the success path (an ok Status holds an empty string) or carry
// ownership of anything but its message.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace raftd {

enum class Code {
    kOk = 0,
    kInvalidArgument,
    kNotFound,
    kCompacted,  // asked for log entries below the first index (they are in a snapshot)
    kCorruption,
    kIoError,
    kNotLeader,
    kBusy,
    kUnavailable,
    kTimeout,
    kAborted,
    kInternal,
};

std::string_view code_name(Code c);

class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

    static Status ok() { return {}; }
    static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
    static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
    static Status compacted(std::string m) { return {Code::kCompacted, std::move(m)}; }
    static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
    static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
    static Status not_leader(std::string m) { return {Code::kNotLeader, std::move(m)}; }
    static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
    static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
    static Status timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
    static Status aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
    static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

    bool is_ok() const { return code_ == Code::kOk; }
    explicit operator bool() const { return is_ok(); }
    Code code() const { return code_; }
    const std::string& message() const { return msg_; }
    // "Corruption: wal/000...1.log offset 4096: bad CRC" — for logs and one-line startup errors.
    std::string to_string() const;

  private:
    Code code_ = Code::kOk;
    std::string msg_;
};

// A value or the Status explaining its absence. Kept minimal on purpose: C++20 has no
// std::expected and we only need construction, inspection and move-out.
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
    Result(Status st) : status_(std::move(st)) { assert(!status_.is_ok()); }  // NOLINT

    bool is_ok() const { return value_.has_value(); }
    explicit operator bool() const { return is_ok(); }
    const Status& status() const { return status_; }
    T& value() & {
        assert(value_);
        return *value_;
    }
    const T& value() const& {
        assert(value_);
        return *value_;
    }
    T&& value() && {
        assert(value_);
        return std::move(*value_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }

  private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace raftd
