package raftd

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"
)

// ApplyConfig describes an application to ApplyLoop: its state machine callbacks and the
// snapshot policy.
type ApplyConfig struct {
	// Sockets of raftd nodes; the loop uses one at a time and moves to the next when its
	// connection is lost. Empty: DefaultSocket("").
	Sockets []string
	// Apply applies one data entry to the state. An error stops the loop for good (the
	// state can no longer follow the log); Err reports it.
	Apply func(Event) error
	// Snapshot returns the state's bytes; Restore replaces the state with them. Nil: the
	// application never snapshots (then it cannot follow a node whose log was compacted
	// below its applied index).
	Snapshot func() ([]byte, error)
	Restore  func([]byte) error
	// OnEntry, when set, also sees noop and config entries.
	OnEntry func(Event)
	// AppliedIndex is where the application's state already is (0: empty).
	AppliedIndex Index
	// A snapshot is saved after this many applied entries, or applied data bytes, since
	// the last one (0: never by that measure).
	SnapshotEveryEntries int
	SnapshotEveryBytes   int
	// Reconnect back-off after a lost stream: doubles from min to max (default 50 ms, 1 s).
	ReconnectMin, ReconnectMax time.Duration
	// Name is sent in hello; Logf gets warnings (default: the standard logger).
	Name string
	Logf func(format string, args ...interface{})
}

// ApplyLoop runs the loop every raftd application needs (docs/applications.md): a
// goroutine subscribes from the last applied index + 1, assembles snapshot chunks (starting
// over at each chunk with offset 0) and hands whole snapshots to Restore, checks that entry
// indexes are contiguous, calls Apply for each data entry, saves snapshots by the policy
// (an upload the node's snapshot already covers counts as done), and after a lost
// connection (the daemon restarted) reconnects and resubscribes from where it stopped.
// Apply, Restore and Snapshot run on that goroutine with the state lock held; readers of
// the state take it with Lock/Unlock.
//
// Owns: a stream connection, a command connection to the same node (proposals, reads,
// snapshot uploads), one goroutine. Never:
// interprets entry data, retries a proposal, or skips an entry.
type ApplyLoop struct {
	cfg ApplyConfig

	state sync.Mutex // the application's state, and applied/restoredFrom

	mu           sync.Mutex // everything below
	applied      Index
	restoredFrom Index
	nodeSnapshot Index
	connects     int
	saved        int
	err          error         // fatal: the loop stopped
	changed      chan struct{} // closed and replaced whenever applied or err changes
	socket       int
	cmd          *Conn

	// The snapshot policy's counters since the last snapshot; the loop goroutine's only.
	sinceEntries, sinceBytes int

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// errStream: the commit stream broke its documented shape; the loop resubscribes.
var errStream = errors.New("raftd apply loop: malformed stream")

// StartApplyLoop starts the loop's goroutine; Close stops it.
func StartApplyLoop(cfg ApplyConfig) *ApplyLoop {
	if len(cfg.Sockets) == 0 {
		cfg.Sockets = []string{DefaultSocket("")}
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 50 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = time.Second
	}
	if cfg.Name == "" {
		cfg.Name = "raftd-go-apply"
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &ApplyLoop{cfg: cfg, applied: cfg.AppliedIndex, changed: make(chan struct{}), ctx: ctx,
		cancel: cancel, done: make(chan struct{})}
	go l.run()
	return l
}

// Lock and Unlock guard the application's state against the loop's Apply and Restore.
func (l *ApplyLoop) Lock()   { l.state.Lock() }
func (l *ApplyLoop) Unlock() { l.state.Unlock() }

// Applied is the last index applied to the state.
func (l *ApplyLoop) Applied() Index { l.mu.Lock(); defer l.mu.Unlock(); return l.applied }

// RestoredFrom is the index of the last snapshot restored (0: none).
func (l *ApplyLoop) RestoredFrom() Index { l.mu.Lock(); defer l.mu.Unlock(); return l.restoredFrom }

// Connects counts subscriptions made (1 + reconnects); SnapshotsSaved the uploads made.
func (l *ApplyLoop) Connects() int       { l.mu.Lock(); defer l.mu.Unlock(); return l.connects }
func (l *ApplyLoop) SnapshotsSaved() int { l.mu.Lock(); defer l.mu.Unlock(); return l.saved }

// Err is what stopped the loop for good (an Apply or Restore error), or nil.
func (l *ApplyLoop) Err() error { l.mu.Lock(); defer l.mu.Unlock(); return l.err }

// Close stops the loop and closes its connections; it returns once the goroutine ended.
func (l *ApplyLoop) Close() error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	cmd := l.cmd
	l.cmd = nil
	l.mu.Unlock()
	if cmd != nil {
		cmd.Close()
	}
	return nil
}

// WaitApplied waits until the state includes entry index; returns the applied index.
func (l *ApplyLoop) WaitApplied(ctx context.Context, index Index) (Index, error) {
	for {
		l.mu.Lock()
		applied, err, ch := l.applied, l.err, l.changed
		l.mu.Unlock()
		if applied >= index {
			return applied, nil
		}
		if err != nil {
			return applied, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return applied, &Error{Code: ErrTimeout, Op: "wait_applied", cause: ctx.Err(),
				Message: fmt.Sprintf("index %d not applied (applied %d)", index, applied)}
		case <-l.ctx.Done():
			return applied, &Error{Code: ErrClosed, Op: "wait_applied", Message: "the apply loop was closed"}
		}
	}
}

// LinearizableRead asks for a read index and waits until the loop applied through it:
// afterwards a read of the state (under Lock) reflects every write acknowledged before the
// call began. A read index is safe to ask again, so a lost command connection is redialed
// once.
func (l *ApplyLoop) LinearizableRead(ctx context.Context) (Index, error) {
	var ri Index
	err := l.command(ctx, true, func(c *Conn) (err error) { ri, err = c.ReadIndex(ctx); return })
	if err != nil {
		return 0, err
	}
	return l.WaitApplied(ctx, ri)
}

// Propose proposes data on the command connection and returns once this loop has applied
// it too (read-your-writes). It is never retried; use WithSession to retry safely.
func (l *ApplyLoop) Propose(ctx context.Context, data []byte, opts ...ProposeOption) (Index, Term, error) {
	var ix Index
	var term Term
	err := l.command(ctx, false, func(c *Conn) (err error) { ix, term, err = c.Propose(ctx, data, opts...); return })
	if err != nil {
		return 0, 0, err
	}
	_, err = l.WaitApplied(ctx, ix)
	return ix, term, err
}

// Conn is the command connection (dialed on first use, to the node the stream follows).
func (l *ApplyLoop) Conn(ctx context.Context) (*Conn, error) {
	l.mu.Lock()
	c, sock := l.cmd, l.cfg.Sockets[l.socket%len(l.cfg.Sockets)]
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := Dial(ctx, sock, WithName(l.cfg.Name+"-cmd"))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil { // another goroutine dialed first
		go c.Close()
		return l.cmd, nil
	}
	if l.ctx.Err() != nil {
		go c.Close()
		return nil, &Error{Code: ErrClosed, Op: "dial", Message: "the apply loop was closed"}
	}
	l.cmd = c
	return c, nil
}

// command runs fn on the command connection; a connection found broken is dropped (the
// next call redials), and with retry a call that failed on it runs once more on a new one.
func (l *ApplyLoop) command(ctx context.Context, retry bool, fn func(*Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := l.Conn(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		if !errors.Is(err, ErrConnection) {
			return err
		}
		l.mu.Lock()
		if l.cmd == c {
			l.cmd = nil
		}
		l.mu.Unlock()
		c.Close()
		if !retry || attempt > 0 {
			return err
		}
	}
}

func (l *ApplyLoop) run() {
	defer close(l.done)
	pause := l.cfg.ReconnectMin
	for l.ctx.Err() == nil {
		before := l.Connects()
		err := l.follow()
		if l.Connects() > before { // it did subscribe: the next failure starts a new back-off
			pause = l.cfg.ReconnectMin
		}
		if l.ctx.Err() != nil {
			return
		}
		var fatal *applyError
		if errors.As(err, &fatal) {
			l.cfg.Logf("%s: stopped: %v", l.cfg.Name, fatal.err)
			l.mu.Lock()
			l.err = fatal.err
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
			return
		}
		l.cfg.Logf("%s: %v; resubscribing from %d in %v", l.cfg.Name, err, l.Applied()+1, pause)
		if errors.Is(err, ErrConnection) && len(l.cfg.Sockets) > 1 {
			l.mu.Lock()
			l.socket++
			cmd := l.cmd
			l.cmd = nil
			l.mu.Unlock()
			if cmd != nil {
				cmd.Close()
			}
		}
		select {
		case <-time.After(pause):
		case <-l.ctx.Done():
			return
		}
		if pause *= 2; pause > l.cfg.ReconnectMax {
			pause = l.cfg.ReconnectMax
		}
	}
}

// applyError wraps an error of the application's callbacks: it stops the loop.
type applyError struct{ err error }

func (e *applyError) Error() string { return e.err.Error() }

// follow subscribes once and applies the stream until it breaks.
func (l *ApplyLoop) follow() error {
	l.mu.Lock()
	sock := l.cfg.Sockets[l.socket%len(l.cfg.Sockets)]
	l.mu.Unlock()
	c, err := Dial(l.ctx, sock, WithName(l.cfg.Name))
	if err != nil {
		return err
	}
	defer c.Close()
	if st, err := c.Status(l.ctx); err == nil {
		l.mu.Lock()
		if st.SnapIndex > l.nodeSnapshot {
			l.nodeSnapshot = st.SnapIndex
		}
		l.mu.Unlock()
	}
	sub, err := c.Subscribe(l.ctx, l.Applied()+1)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.connects++
	l.mu.Unlock()
	var snap []byte
	inSnap := false
	for {
		ev, err := sub.Next(l.ctx)
		if err != nil {
			return err
		}
		if ev.Kind == SnapshotEvent {
			if ev.Offset == 0 {
				snap, inSnap = snap[:0], true
			} else if !inSnap || ev.Offset != uint64(len(snap)) {
				return fmt.Errorf("%w: snapshot chunk at offset %d, expected %d", errStream, ev.Offset, len(snap))
			}
			snap = append(snap, ev.Data...)
			if !ev.Done {
				continue
			}
			if l.cfg.Restore == nil {
				return &applyError{fmt.Errorf("the stream starts with a snapshot at %d but the application has no Restore", ev.Index)}
			}
			l.state.Lock()
			rerr := l.cfg.Restore(snap)
			l.state.Unlock()
			if rerr != nil {
				return &applyError{fmt.Errorf("restore of the snapshot at %d: %w", ev.Index, rerr)}
			}
			l.advance(ev.Index, true)
			snap, inSnap, l.sinceEntries, l.sinceBytes = nil, false, 0, 0
			continue
		}
		if inSnap {
			return fmt.Errorf("%w: entry %d inside a snapshot", errStream, ev.Index)
		}
		if applied := l.Applied(); ev.Index != applied+1 {
			return fmt.Errorf("%w: entry %d after %d", errStream, ev.Index, applied)
		}
		l.state.Lock()
		var aerr error
		if ev.Type == "data" {
			aerr = l.cfg.Apply(ev)
			l.sinceBytes += len(ev.Data)
		} else if l.cfg.OnEntry != nil {
			l.cfg.OnEntry(ev)
		}
		l.state.Unlock()
		if aerr != nil {
			return &applyError{fmt.Errorf("apply of entry %d: %w", ev.Index, aerr)}
		}
		l.advance(ev.Index, false)
		l.sinceEntries++
		if l.cfg.Snapshot != nil && ((l.cfg.SnapshotEveryEntries > 0 && l.sinceEntries >= l.cfg.SnapshotEveryEntries) ||
			(l.cfg.SnapshotEveryBytes > 0 && l.sinceBytes >= l.cfg.SnapshotEveryBytes)) {
			l.sinceEntries, l.sinceBytes = 0, 0
			if err := l.saveSnapshot(); err != nil {
				return err
			}
		}
	}
}

func (l *ApplyLoop) advance(ix Index, restored bool) {
	l.mu.Lock()
	l.applied = ix
	if restored {
		l.restoredFrom = ix
		if ix > l.nodeSnapshot {
			l.nodeSnapshot = ix
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// saveSnapshot uploads the state through the applied index on the command connection,
// which goes to the node the stream follows (a node accepts a snapshot at any index it
// delivered). Not on the stream's own connection: while the upload waits for its replies
// the stream's events keep arriving, and a full subscription queue would stop that
// connection's reader before the replies. A refused upload is logged and the loop goes on.
func (l *ApplyLoop) saveSnapshot() error {
	l.state.Lock()
	l.mu.Lock()
	ix, covered := l.applied, l.nodeSnapshot
	l.mu.Unlock()
	if ix <= covered { // a replay below the node's snapshot: nothing to add
		l.state.Unlock()
		return nil
	}
	blob, err := l.cfg.Snapshot()
	l.state.Unlock()
	if err != nil {
		return &applyError{fmt.Errorf("snapshot at %d: %w", ix, err)}
	}
	ctx, cancel := context.WithTimeout(l.ctx, 60*time.Second)
	defer cancel()
	var got Index
	err = l.command(ctx, false, func(c *Conn) (err error) { got, err = c.Snapshot(ctx, ix, bytesReader(blob), 0); return })
	if err != nil {
		l.cfg.Logf("%s: snapshot at %d not saved: %v", l.cfg.Name, ix, err)
		return nil
	}
	l.mu.Lock()
	if got > l.nodeSnapshot {
		l.nodeSnapshot = got
	}
	l.saved++
	l.mu.Unlock()
	return nil
}
