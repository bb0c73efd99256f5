// The client protocol's error codes (docs/protocol.md 5) as one list of (enumerator, wire
// string). The C++ client's public raftd::client::ErrorCode and the codec's
// raftd::ipc::ErrorCode are both generated from it, in this order, so the two enums and the
// wire names cannot drift apart (the client converts one into the other by value).
//
// Owns: the list. Never: anything else; it is installed with <raftd/client.h>.
// Thread rules: none (a macro).
#pragma once

// X(enumerator, "WIRE_NAME") for every code, in enum order. Append only: the values are
// stable.
#define RAFTD_PROTOCOL_ERROR_CODES(X)  \
    X(kBadFrame, "BAD_FRAME")          \
    X(kBadRequest, "BAD_REQUEST")      \
    X(kUnknownOp, "UNKNOWN_OP")        \
    X(kTooLarge, "TOO_LARGE")          \
    X(kUnavailable, "UNAVAILABLE")     \
    X(kIndeterminate, "INDETERMINATE") \
    X(kBusy, "BUSY")                   \
    X(kTimeout, "TIMEOUT")             \
    X(kNotFound, "NOT_FOUND")          \
    X(kShuttingDown, "SHUTTING_DOWN")  \
    X(kInternal, "INTERNAL")           \
    X(kExpired, "EXPIRED")
