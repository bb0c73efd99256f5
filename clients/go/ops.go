package raftd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Index is a Raft log index; Term a Raft term; NodeID a node id (0: none).
type (
	Index  uint64
	Term   uint64
	NodeID uint64
)

// Progress is the leader's replication state of one member (status on the leader only).
type Progress struct {
	Match, Next Index
	State       string // "probe" | "replicate" | "snapshot"
}

// Member is one member of the configuration.
type Member struct {
	Node     NodeID
	Addr     string
	Voter    bool
	Outgoing bool      // a voter of the outgoing configuration, while joint
	Progress *Progress // status on the leader only
}

// Membership is a configuration: its members, and whether it is joint (Raft thesis 4.3).
type Membership struct {
	Members []Member
	Joint   bool
}

// Member returns the member with id node, if any.
func (m Membership) Member(node NodeID) (Member, bool) {
	for _, x := range m.Members {
		if x.Node == node {
			return x, true
		}
	}
	return Member{}, false
}

// Status is one node's view (docs/protocol.md, status).
type Status struct {
	NodeID                                   NodeID
	Cluster, Role                            string
	Term                                     Term
	Leader                                   NodeID
	Commit, FirstIndex, LastIndex, SnapIndex Index
	WALSyncs                                 uint64
	Membership
	Version string
}

// MemberSpec names a member to add in ChangeMembers.
type MemberSpec struct {
	Node    NodeID
	Addr    string
	Learner bool
}

// Hello checks the protocol version and returns the server's identity and limits.
func (c *Conn) Hello(ctx context.Context) (Hello, error) {
	m, err := c.call(ctx, "hello", field{"version", uint64(ProtocolVersion)}, field{"name", c.opts.name})
	if err != nil {
		return Hello{}, err
	}
	h := Hello{Version: asUint(m["version"]), NodeID: NodeID(asUint(m["node_id"])),
		MaxFrame: asUint(m["max_frame"]), MaxEntry: asUint(m["max_entry"])}
	h.Cluster, _ = m["cluster"].(string)
	if h.Version != ProtocolVersion {
		return h, &Error{Code: ErrBadRequest, Op: "hello",
			Message: fmt.Sprintf("server speaks protocol %d, this client %d", h.Version, ProtocolVersion)}
	}
	return h, nil
}

// Ping is a liveness check.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.call(ctx, "ping")
	return err
}

// ProposeOption adds the optional fields of a proposal.
type ProposeOption func(*proposeOpts)

type proposeOpts struct {
	client, seq uint64
	duplicate   *bool
}

// WithSession makes a proposal exactly-once: client is a random id picked once per session
// (>= 1), seq increases per proposal (>= 1). Retrying after INDETERMINATE with the same pair
// is safe: when the first attempt committed, raftd answers with its original index and term
// instead of appending again. See Session.
func WithSession(client, seq uint64) ProposeOption {
	return func(o *proposeOpts) { o.client, o.seq = client, seq }
}

// ReportDuplicate sets *dup to whether raftd answered a WithSession proposal from its
// session table (the entry had already committed) rather than by appending it.
func ReportDuplicate(dup *bool) ProposeOption { return func(o *proposeOpts) { o.duplicate = dup } }

// Session hands out the (client, seq) pairs of WithSession: a random client id and a
// sequence number increasing from 1. Safe for concurrent use.
type Session struct {
	ID  uint64
	seq atomic.Uint64
}

// NewSession picks a random client id.
func NewSession() *Session {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return &Session{ID: id}
		}
	}
}

// Next returns the next sequence number. Keep it to retry the same proposal.
func (s *Session) Next() uint64 { return s.seq.Add(1) }

// Propose appends data as one entry and returns once it is committed. ErrUnavailable: it
// definitely did not commit (safe to retry). ErrIndeterminate (also when ctx ended after the
// proposal was sent, or the connection was lost after): it may commit; look for it in the
// commit stream before retrying, or retry under WithSession.
func (c *Conn) Propose(ctx context.Context, data []byte, opts ...ProposeOption) (Index, Term, error) {
	return c.ProposeAsync(ctx, data, opts...).Wait()
}

// Proposal is a proposal in flight, from ProposeAsync.
type Proposal struct {
	c   *Conn
	ctx context.Context
	id  uint64
	cl  *call
	o   proposeOpts
	err error // set when it was never sent
}

// ProposeAsync sends a proposal without waiting for it: it is queued on the connection
// before ProposeAsync returns, so proposals one goroutine starts in sequence reach raftd,
// and the log, in that order (docs/protocol.md 6.2). Wait gives its outcome; ctx bounds it
// as for Propose.
func (c *Conn) ProposeAsync(ctx context.Context, data []byte, opts ...ProposeOption) *Proposal {
	p := &Proposal{c: c, ctx: ctx}
	for _, f := range opts {
		f(&p.o)
	}
	if p.err = ctx.Err(); p.err != nil {
		return p
	}
	if data == nil {
		data = []byte{}
	}
	fs := []field{{"data", data}}
	if p.o.client != 0 || p.o.seq != 0 {
		fs = append(fs, field{"client", p.o.client}, field{"seq", p.o.seq})
	}
	if ms := deadlineMS(ctx); ms > 0 {
		fs = append(fs, field{"timeout_ms", ms})
	}
	p.id, p.cl, p.err = c.send("propose", fs, nil)
	return p
}

// Wait returns the proposal's index and term once it committed, or why it did not (see
// Propose). Call it once.
func (p *Proposal) Wait() (Index, Term, error) {
	if p.err != nil {
		return 0, 0, p.err
	}
	m, err := p.c.wait(p.ctx, p.id, p.cl)
	if err != nil {
		return 0, 0, err
	}
	if p.o.duplicate != nil {
		*p.o.duplicate, _ = m["duplicate"].(bool)
	}
	return Index(asUint(m["index"])), Term(asUint(m["term"])), nil
}

// ReadIndex returns an index i such that once the application has applied the commit
// stream through i, a read of its local state is linearizable (docs/protocol.md 6.5).
func (c *Conn) ReadIndex(ctx context.Context) (Index, error) {
	var fs []field
	if ms := deadlineMS(ctx); ms > 0 {
		fs = append(fs, field{"timeout_ms", ms})
	}
	m, err := c.call(ctx, "read_index", fs...)
	if err != nil {
		return 0, err
	}
	return Index(asUint(m["index"])), nil
}

// Status is this node's view of the cluster.
func (c *Conn) Status(ctx context.Context) (Status, error) {
	m, err := c.call(ctx, "status")
	if err != nil {
		return Status{}, err
	}
	s := Status{NodeID: NodeID(asUint(m["node_id"])), Term: Term(asUint(m["term"])),
		Leader: NodeID(asUint(m["leader"])), Commit: Index(asUint(m["commit"])),
		FirstIndex: Index(asUint(m["first_index"])), LastIndex: Index(asUint(m["last_index"])),
		SnapIndex: Index(asUint(m["snapshot_index"])), WALSyncs: asUint(m["wal_syncs"]),
		Membership: membershipFrom(m)}
	s.Cluster, _ = m["cluster"].(string)
	s.Role, _ = m["role"].(string)
	s.Version, _ = m["version"].(string)
	return s, nil
}

// Members is the current configuration.
func (c *Conn) Members(ctx context.Context) (Membership, error) {
	return c.membership(ctx, "members")
}

// AddMember adds node at addr (a learner when learner is true); returns once committed.
func (c *Conn) AddMember(ctx context.Context, node NodeID, addr string, learner bool) (Membership, error) {
	return c.membership(ctx, "add_member", field{"node", uint64(node)}, field{"addr", addr}, field{"learner", learner})
}

// RemoveMember removes node; returns once committed.
func (c *Conn) RemoveMember(ctx context.Context, node NodeID) (Membership, error) {
	return c.membership(ctx, "remove_member", field{"node", uint64(node)})
}

// Promote makes learner node a voter.
func (c *Conn) Promote(ctx context.Context, node NodeID) (Membership, error) {
	return c.membership(ctx, "promote", field{"node", uint64(node)})
}

// Demote makes voter node a learner.
func (c *Conn) Demote(ctx context.Context, node NodeID) (Membership, error) {
	return c.membership(ctx, "demote", field{"node", uint64(node)})
}

// ChangeMembers adds and removes several members through a joint configuration; returns
// once the joint configuration was entered and left.
func (c *Conn) ChangeMembers(ctx context.Context, add []MemberSpec, remove []NodeID) (Membership, error) {
	a := make([]map[string]interface{}, 0, len(add))
	for _, s := range add {
		a = append(a, map[string]interface{}{"node": uint64(s.Node), "addr": s.Addr, "learner": s.Learner})
	}
	r := make([]uint64, 0, len(remove))
	for _, n := range remove {
		r = append(r, uint64(n))
	}
	return c.membership(ctx, "change_members", field{"add", a}, field{"remove", r})
}

func (c *Conn) membership(ctx context.Context, op string, fs ...field) (Membership, error) {
	if ms := deadlineMS(ctx); ms > 0 && op != "members" {
		fs = append(fs, field{"timeout_ms", ms})
	}
	m, err := c.call(ctx, op, fs...)
	if err != nil {
		return Membership{}, err
	}
	return membershipFrom(m), nil
}

// TransferLeader asks the leader to hand leadership to node to; returns to once it leads.
func (c *Conn) TransferLeader(ctx context.Context, to NodeID) (NodeID, error) {
	m, err := c.call(ctx, "transfer_leader", field{"to", uint64(to)})
	if err != nil {
		return 0, err
	}
	return NodeID(asUint(m["leader"])), nil
}

// Campaign makes this node start an election now; returns the term it campaigns in.
func (c *Conn) Campaign(ctx context.Context) (Term, error) {
	m, err := c.call(ctx, "campaign")
	if err != nil {
		return 0, err
	}
	return Term(asUint(m["term"])), nil
}

// snapshotWindow bounds the chunks of one upload awaiting their replies.
const snapshotWindow = 8

// Snapshot uploads the application's state through index, read from r, in chunks of at
// most chunk bytes (0: the server's max_entry, else 1 MiB), several in flight. It returns
// the index of the node's snapshot that covers index once it is durable (index, or a later
// one the node already had). A failed upload saves nothing; the next upload on this
// connection starts over.
func (c *Conn) Snapshot(ctx context.Context, index Index, r io.Reader, chunk int) (Index, error) {
	if chunk <= 0 {
		chunk = int(c.server.MaxEntry)
		if chunk <= 0 {
			chunk = 1 << 20
		}
	}
	type sent struct {
		id uint64
		cl *call
	}
	var window []sent
	var firstErr error
	drain := func(keep int) {
		for len(window) > keep {
			if _, err := c.wait(ctx, window[0].id, window[0].cl); err != nil && firstErr == nil {
				firstErr = err
			}
			window = window[1:]
		}
	}
	// Read one chunk ahead, so the last chunk goes with done = true.
	cur := make([]byte, chunk)
	n, rerr := io.ReadFull(r, cur)
	var offset uint64
	for {
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			drain(0)
			return 0, fmt.Errorf("raftd snapshot: reading the state: %w", rerr)
		}
		done := rerr != nil
		var next []byte
		var nn int
		if !done {
			next = make([]byte, chunk)
			nn, rerr = io.ReadFull(r, next)
			if nn == 0 && rerr == io.EOF {
				done = true
			}
		}
		if err := ctx.Err(); err != nil {
			drain(0)
			return 0, err
		}
		id, cl, err := c.send("snapshot", []field{{"index", uint64(index)}, {"offset", offset},
			{"data", cur[:n]}, {"done", done}}, nil)
		if err != nil {
			drain(0)
			return 0, err
		}
		offset += uint64(n)
		if done {
			drain(0)
			m, err := c.wait(ctx, id, cl)
			if firstErr != nil {
				return 0, firstErr
			}
			if err != nil {
				return 0, err
			}
			return Index(asUint(m["index"])), nil
		}
		window = append(window, sent{id, cl})
		drain(snapshotWindow - 1)
		if firstErr != nil {
			drain(0)
			return 0, firstErr
		}
		cur, n = next, nn
	}
}

func membershipFrom(m map[string]interface{}) Membership {
	out := Membership{}
	out.Joint, _ = m["joint"].(bool)
	list, _ := m["members"].([]interface{})
	for _, x := range list {
		mm, ok := x.(map[string]interface{})
		if !ok {
			continue
		}
		mem := Member{Node: NodeID(asUint(mm["node"]))}
		mem.Addr, _ = mm["addr"].(string)
		mem.Voter, _ = mm["voter"].(bool)
		mem.Outgoing, _ = mm["outgoing"].(bool)
		if p, ok := mm["progress"].(map[string]interface{}); ok {
			mem.Progress = &Progress{Match: Index(asUint(p["match"])), Next: Index(asUint(p["next"]))}
			mem.Progress.State, _ = p["state"].(string)
		}
		out.Members = append(out.Members, mem)
	}
	return out
}

// IsNotCommitted reports whether err from Propose means the proposal definitely did not
// commit (UNAVAILABLE, or never sent), so a plain retry is safe.
func IsNotCommitted(err error) bool {
	var e *Error
	if !errors.As(err, &e) { // the context ended before anything was sent
		return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	}
	if errors.Is(err, ErrIndeterminate) {
		return false
	}
	switch e.Code {
	case ErrUnavailable, ErrBusy, ErrTooLarge, ErrBadRequest, ErrConnection, ErrClosed:
		return true
	}
	return false
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
