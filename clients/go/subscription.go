package raftd

import (
	"context"
	"sync"
)

// EventKind tells entries from snapshot chunks.
type EventKind int

const (
	EntryEvent    EventKind = iota // one committed entry
	SnapshotEvent                  // one chunk of a snapshot (docs/protocol.md 6.3)
)

// Event is one event of a commit stream.
type Event struct {
	Kind  EventKind
	Index Index
	Term  Term
	Type  string // entries: "data" | "noop" | "config"
	Data  []byte
	// Snapshot chunks: the byte offset of Data in the snapshot, and whether it is the last.
	// A chunk with Offset 0 starts a snapshot; discard any partial one.
	Offset uint64
	Done   bool
	// Config entries and snapshot chunks: the configuration they establish.
	Members *Membership
	// Entries proposed WithSession carry their (client, seq); 0 otherwise.
	Client, Seq uint64
}

func eventFrom(ev string, m map[string]interface{}) Event {
	e := Event{Kind: EntryEvent, Index: Index(asUint(m["index"])), Term: Term(asUint(m["term"])),
		Offset: asUint(m["offset"]), Client: asUint(m["client"]), Seq: asUint(m["seq"])}
	if ev == "snapshot" {
		e.Kind, e.Type = SnapshotEvent, "snapshot"
	} else {
		e.Type, _ = m["type"].(string)
	}
	e.Data, _ = m["data"].([]byte)
	e.Done, _ = m["done"].(bool)
	if _, ok := m["members"]; ok {
		ms := membershipFrom(m)
		e.Members = &ms
	}
	return e
}

// Subscription is one commit stream: read it with Next, end it with Close. Events are
// queued in memory up to the connection's subscription queue bound (WithSubscriptionQueue);
// while a subscription's queue is full the connection stops reading from its socket, so a
// subscription that is not read pauses every reply on that connection too. Streams that are
// consumed slowly belong on a connection of their own.
type Subscription struct {
	c     *Conn
	id    uint64
	limit int

	mu     sync.Mutex
	queue  []Event
	head   int
	bytes  int
	err    error // why it ended (server "end", connection loss, Close)
	avail  chan struct{}
	space  chan struct{}
	closed bool
}

// Subscribe starts a commit stream from index from (0: only entries committed from now on;
// 1: everything, a snapshot first when the log was compacted). It returns once raftd
// accepted it.
func (c *Conn) Subscribe(ctx context.Context, from Index) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Subscription{c: c, limit: c.opts.subQueue, avail: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	var fs []field
	if from > 0 {
		fs = append(fs, field{"from", uint64(from)})
	}
	id, cl, err := c.send("subscribe", fs, s)
	if err != nil {
		return nil, err
	}
	if _, err := c.wait(ctx, id, cl); err != nil {
		c.mu.Lock()
		if c.subs[id] == s {
			delete(c.subs, id)
		}
		c.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// ID is the subscription's id (its subscribe request's id).
func (s *Subscription) ID() uint64 { return s.id }

// Next returns the next event, waiting for it until ctx ends (then ctx's error). After the
// stream ended it returns why: the server's end (an *Error), the connection's loss, or
// ErrClosed after Close.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if s.head < len(s.queue) {
			e := s.queue[s.head]
			s.queue[s.head] = Event{}
			s.head++
			if s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			}
			s.bytes -= len(e.Data) + 64
			s.mu.Unlock()
			select {
			case s.space <- struct{}{}:
			default:
			}
			return e, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return Event{}, err
		}
		s.mu.Unlock()
		select {
		case <-s.avail:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Close is CloseContext without a deadline.
func (s *Subscription) Close() error {
	return s.CloseContext(context.Background())
}

// CloseContext ends the subscription: no event is returned by Next afterwards. It tells
// raftd (unsubscribe) when the connection is still up, waiting for the reply until ctx ends.
func (s *Subscription) CloseContext(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.err != nil {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.err = &Error{Code: ErrClosed, Op: "subscribe", Message: "subscription closed"}
	s.queue, s.head, s.bytes = nil, 0, 0
	s.mu.Unlock()
	s.wakeAll()
	_, err := s.c.call(ctx, "unsubscribe", field{"sub", s.id})
	s.c.mu.Lock()
	if s.c.subs[s.id] == s {
		delete(s.c.subs, s.id)
	}
	s.c.mu.Unlock()
	if err != nil && (errorsIsCode(err, ErrClosed) || errorsIsCode(err, ErrConnection)) {
		return nil // the connection is gone, and the subscription with it
	}
	return err
}

func errorsIsCode(err error, c Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == c
}

func (s *Subscription) wakeAll() {
	select {
	case s.avail <- struct{}{}:
	default:
	}
	select {
	case s.space <- struct{}{}:
	default:
	}
}

// deliver queues an event (from the reader goroutine); it waits while the queue is full,
// until Next makes room, the subscription closes, or the connection ends (done).
func (s *Subscription) deliver(e Event, done <-chan struct{}) {
	s.mu.Lock()
	for s.bytes >= s.limit && !s.closed && s.err == nil {
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-done:
			return
		}
		s.mu.Lock()
	}
	if s.closed || s.err != nil {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, e)
	s.bytes += len(e.Data) + 64
	s.mu.Unlock()
	select {
	case s.avail <- struct{}{}:
	default:
	}
}

// end records why the stream ended; Next returns it once the queue is drained.
func (s *Subscription) end(why error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = why
	}
	s.mu.Unlock()
	s.wakeAll()
}
