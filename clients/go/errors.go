package raftd

import "fmt"

// Code is a protocol error code (docs/protocol.md section 5), or one of the two the client
// produces itself (CONNECTION, CLOSED). Each code is also an error value, so
//
//	errors.Is(err, raftd.ErrUnavailable)
//
// tells what a failed call means. An unknown code from the server behaves like INTERNAL.
type Code string

func (c Code) Error() string { return string(c) }

const (
	ErrBadFrame      Code = "BAD_FRAME"
	ErrBadRequest    Code = "BAD_REQUEST"
	ErrUnknownOp     Code = "UNKNOWN_OP"
	ErrTooLarge      Code = "TOO_LARGE"
	ErrUnavailable   Code = "UNAVAILABLE"   // definitely not committed: safe to retry
	ErrIndeterminate Code = "INDETERMINATE" // may or may not commit: check the stream first
	ErrBusy          Code = "BUSY"
	ErrTimeout       Code = "TIMEOUT"
	ErrNotFound      Code = "NOT_FOUND"
	ErrShuttingDown  Code = "SHUTTING_DOWN"
	ErrInternal      Code = "INTERNAL"
	// ErrExpired: the server can no longer tell whether a (client, seq) proposal committed
	// (its session was evicted). errors.Is(err, ErrIndeterminate) holds for it too.
	ErrExpired Code = "EXPIRED"
	// ErrConnection: the socket failed or raftd closed it. A request that had not been
	// written yet when that happened was not done; a proposal that had been written fails
	// with INDETERMINATE wrapping this.
	ErrConnection Code = "CONNECTION"
	// ErrClosed: the Conn (or Subscription) was closed by its owner.
	ErrClosed Code = "CLOSED"
)

var knownCodes = map[Code]bool{ErrBadFrame: true, ErrBadRequest: true, ErrUnknownOp: true,
	ErrTooLarge: true, ErrUnavailable: true, ErrIndeterminate: true, ErrBusy: true,
	ErrTimeout: true, ErrNotFound: true, ErrShuttingDown: true, ErrInternal: true,
	ErrExpired: true}

// Leader is the leader raftd named in an error, when it knows one.
type Leader struct {
	Node NodeID
	Addr string
}

// Error is a failed call: the server's error reply, or the client's own verdict (a
// deadline that expired, a lost connection). Compare it with errors.Is against the Err*
// codes; errors.As gives the message and the leader hint.
type Error struct {
	Code    Code   // as the server sent it (an unknown code is kept; it matches ErrInternal)
	Message string // for humans; may change
	Leader  *Leader
	Op      string // the request's op
	cause   error  // context.DeadlineExceeded, context.Canceled, or a connection *Error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("raftd %s: %s", e.Op, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Leader != nil {
		s += fmt.Sprintf(" (leader %d at %q)", e.Leader.Node, e.Leader.Addr)
	}
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.cause }

// Is matches the codes: its own, INTERNAL for a code this client does not know, and
// INDETERMINATE for EXPIRED and for a proposal's SHUTTING_DOWN (docs/protocol.md: treat it
// like INDETERMINATE).
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	if !ok {
		return false
	}
	switch {
	case c == e.Code:
		return true
	case c == ErrInternal:
		return !knownCodes[e.Code] && e.Code != ErrConnection && e.Code != ErrClosed
	case c == ErrIndeterminate:
		return e.Code == ErrExpired || (e.Code == ErrShuttingDown && e.Op == "propose")
	}
	return false
}

func errorFromReply(op string, m map[string]interface{}) *Error {
	e := &Error{Code: ErrInternal, Op: op}
	em, _ := m["error"].(map[string]interface{})
	if s, ok := em["code"].(string); ok {
		e.Code = Code(s)
	}
	e.Message, _ = em["message"].(string)
	if lm, ok := em["leader"].(map[string]interface{}); ok {
		e.Leader = &Leader{Node: NodeID(asUint(lm["node"]))}
		e.Leader.Addr, _ = lm["addr"].(string)
	}
	return e
}
