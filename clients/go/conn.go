package raftd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the protocol version this client speaks (hello).
const ProtocolVersion = 1

// maxReplyFrame bounds a frame the client accepts; raftd's own max_frame is at most this.
const maxReplyFrame = 64 << 20

// Option configures Dial.
type Option func(*options)

type options struct {
	name     string
	hello    bool
	subQueue int
}

// WithName sets the name sent in hello (raftd logs it). Default "raftd-go".
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithoutHello skips the hello exchange at Dial (Server() then returns zeros).
func WithoutHello() Option { return func(o *options) { o.hello = false } }

// WithSubscriptionQueue bounds the bytes of events each subscription queues before the
// connection pauses reading (default 8 MiB). See Subscribe.
func WithSubscriptionQueue(bytes int) Option { return func(o *options) { o.subQueue = bytes } }

// Hello is what the server said at hello.
type Hello struct {
	Version  uint64
	NodeID   NodeID
	Cluster  string
	MaxFrame uint64
	MaxEntry uint64
}

// DefaultSocket is path when non-empty, else $RAFTD_SOCKET, else "./raftd.sock".
func DefaultSocket(path string) string {
	if path != "" {
		return path
	}
	if p := os.Getenv("RAFTD_SOCKET"); p != "" {
		return p
	}
	return "./raftd.sock"
}

// Conn is one connection to a raftd node; safe for concurrent use (see the package doc).
type Conn struct {
	nc     net.Conn
	opts   options
	server Hello
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*call
	subs    map[uint64]*Subscription
	wbuf    []byte // frames not yet handed to the writer, in send order
	batch   uint64 // the number of the batch wbuf will become
	broken  error  // set once: the connection is unusable from then on

	wake       chan struct{} // cap 1: the writer has frames to write
	done       chan struct{} // closed by Close or failure: stop both goroutines
	doneOnce   sync.Once
	writerDone chan struct{}
	readerDone chan struct{}
}

type call struct {
	op    string
	batch uint64 // the write batch that carries this request
	ch    chan reply
}

type reply struct {
	m   map[string]interface{}
	err error
}

// Dial connects to the raftd socket at path (DefaultSocket(path)) and, unless WithoutHello,
// checks the protocol version with hello.
func Dial(ctx context.Context, path string, opts ...Option) (*Conn, error) {
	o := options{name: "raftd-go", hello: true, subQueue: 8 << 20}
	for _, f := range opts {
		f(&o)
	}
	path = DefaultSocket(path)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, &Error{Code: ErrConnection, Op: "dial", Message: err.Error()}
	}
	c := &Conn{nc: nc, opts: o, pending: map[uint64]*call{}, subs: map[uint64]*Subscription{},
		batch: 1, wake: make(chan struct{}, 1), done: make(chan struct{}),
		writerDone: make(chan struct{}), readerDone: make(chan struct{})}
	go c.writer()
	go c.reader()
	if o.hello {
		h, err := c.Hello(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.server = h
	}
	return c, nil
}

// Server is what raftd answered to hello at Dial.
func (c *Conn) Server() Hello { return c.server }

// Close ends the connection: requests in flight fail (a proposal with INDETERMINATE),
// subscriptions end with ErrClosed, and both goroutines have exited when it returns.
func (c *Conn) Close() error {
	c.fail(&Error{Code: ErrClosed, Op: "close", Message: "connection closed by the client"})
	<-c.writerDone
	<-c.readerDone
	return nil
}

// fail marks the connection broken (the first reason wins), stops the goroutines and
// answers every request in flight and every subscription.
func (c *Conn) fail(why *Error) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return
	}
	c.broken = why
	pending, subs := c.pending, c.subs
	c.pending, c.subs = map[uint64]*call{}, map[uint64]*Subscription{}
	// Frames of batch c.batch were never handed to the socket; earlier batches may have been.
	unsent := c.batch
	c.wbuf = nil
	c.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
	c.nc.Close()
	for _, cl := range pending {
		cl.ch <- reply{err: lostError(cl, why, cl.batch >= unsent)}
	}
	for _, s := range subs {
		s.end(why)
	}
}

// lostError is what a request in flight gets when the connection goes: a proposal that may
// have reached raftd is INDETERMINATE; anything else, or anything never written, is the
// connection error itself.
func lostError(cl *call, why *Error, unsent bool) error {
	if unsent {
		return &Error{Code: why.Code, Op: cl.op, Message: "not sent: " + why.Message}
	}
	if cl.op == "propose" {
		return &Error{Code: ErrIndeterminate, Op: cl.op,
			Message: "the connection was lost after the proposal was sent", cause: why}
	}
	return &Error{Code: why.Code, Op: cl.op, Message: why.Message}
}

// field is one request field; requests are encoded with their keys in the given order.
type field struct {
	k string
	v interface{}
}

func encodeRequest(op string, id uint64, fields []field) ([]byte, error) {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0, 0})
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(true)
	if err := enc.EncodeMapLen(2 + len(fields)); err != nil {
		return nil, err
	}
	enc.EncodeString("op")
	enc.EncodeString(op)
	enc.EncodeString("id")
	enc.EncodeUint(id)
	for _, f := range fields {
		enc.EncodeString(f.k)
		if err := enc.Encode(f.v); err != nil {
			return nil, fmt.Errorf("field %q: %w", f.k, err)
		}
	}
	out := b.Bytes()
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// send queues one request for the writer. sub, when non-nil, is registered under the
// request's id before the frame can leave, so no event following the reply is missed.
func (c *Conn) send(op string, fields []field, sub *Subscription) (uint64, *call, error) {
	id := c.nextID.Add(1)
	frame, err := encodeRequest(op, id, fields)
	if err != nil {
		return 0, nil, &Error{Code: ErrBadRequest, Op: op, Message: err.Error()}
	}
	cl := &call{op: op, ch: make(chan reply, 1)}
	c.mu.Lock()
	if c.broken != nil {
		why := c.broken.(*Error)
		c.mu.Unlock()
		return 0, nil, &Error{Code: why.Code, Op: op, Message: "not sent: " + why.Message}
	}
	cl.batch = c.batch
	c.pending[id] = cl
	if sub != nil {
		sub.id = id
		c.subs[id] = sub
	}
	c.wbuf = append(c.wbuf, frame...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return id, cl, nil
}

// wait waits for the reply of request id. A context that ends first abandons the request
// (its late reply is dropped): INDETERMINATE for a proposal, TIMEOUT for anything else.
func (c *Conn) wait(ctx context.Context, id uint64, cl *call) (map[string]interface{}, error) {
	var r reply
	select {
	case r = <-cl.ch:
	case <-ctx.Done():
		c.mu.Lock()
		_, still := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !still { // answered (or failed) while the context ended: take that answer
			r = <-cl.ch
			break
		}
		if cl.op == "propose" {
			return nil, &Error{Code: ErrIndeterminate, Op: cl.op, cause: ctx.Err(),
				Message: "the context ended after the proposal was sent; it may still commit"}
		}
		return nil, &Error{Code: ErrTimeout, Op: cl.op, cause: ctx.Err(),
			Message: "the context ended before the reply"}
	}
	if r.err != nil {
		return nil, r.err
	}
	if ok, _ := r.m["ok"].(bool); !ok {
		return nil, errorFromReply(cl.op, r.m)
	}
	return r.m, nil
}

// call sends one request and waits for its reply. A context that has already ended sends
// nothing.
func (c *Conn) call(ctx context.Context, op string, fields ...field) (map[string]interface{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, cl, err := c.send(op, fields, nil)
	if err != nil {
		return nil, err
	}
	return c.wait(ctx, id, cl)
}

// Call sends any request (op and fields, e.g. {"node": 4}) and returns the reply map: for
// operations this package has no method for, and for testing raftd's answers to bad input.
func (c *Conn) Call(ctx context.Context, op string, fields map[string]interface{}) (map[string]interface{}, error) {
	fs := make([]field, 0, len(fields))
	for k, v := range fields {
		fs = append(fs, field{k, v})
	}
	return c.call(ctx, op, fs...)
}

func (c *Conn) writer() {
	defer close(c.writerDone)
	var spare []byte
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		buf := c.wbuf
		c.wbuf = spare[:0]
		c.batch++
		c.mu.Unlock()
		if len(buf) == 0 {
			spare = buf
			continue
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(&Error{Code: ErrConnection, Op: "write", Message: err.Error()})
			return
		}
		if cap(buf) <= 1<<20 {
			spare = buf
		} else {
			spare = nil
		}
	}
}

func (c *Conn) reader() {
	defer close(c.readerDone)
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var hdr [4]byte
	var body []byte
	dec := msgpack.NewDecoder(nil)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			c.fail(readError(err))
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > maxReplyFrame {
			c.fail(&Error{Code: ErrConnection, Op: "read", Message: fmt.Sprintf("raftd sent a frame of %d bytes", n)})
			return
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			c.fail(readError(err))
			return
		}
		dec.Reset(bytes.NewReader(body))
		m, err := dec.DecodeMap()
		if err != nil || m == nil {
			c.fail(&Error{Code: ErrConnection, Op: "read", Message: fmt.Sprintf("undecodable frame: %v", err)})
			return
		}
		c.dispatch(m)
	}
}

func readError(err error) *Error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &Error{Code: ErrConnection, Op: "read", Message: "raftd closed the connection"}
	}
	return &Error{Code: ErrConnection, Op: "read", Message: err.Error()}
}

func (c *Conn) dispatch(m map[string]interface{}) {
	id := asUint(m["id"])
	if ev, isEvent := m["ev"].(string); isEvent {
		c.mu.Lock()
		s := c.subs[id]
		if s != nil && ev == "end" {
			delete(c.subs, id)
		}
		c.mu.Unlock()
		if s == nil {
			return
		}
		if ev == "end" {
			s.end(errorFromReply("subscribe", m))
			return
		}
		s.deliver(eventFrom(ev, m), c.done)
		return
	}
	c.mu.Lock()
	cl := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if cl != nil {
		cl.ch <- reply{m: m}
	}
}

// deadlineMS is the context's remaining time for the protocol's optional timeout_ms field
// (how long raftd may wait for a leader), or 0 when the context has no deadline.
func deadlineMS(ctx context.Context) uint64 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	ms := time.Until(d).Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return uint64(ms)
}

// asUint reads any msgpack integer that holds a non-negative value; anything else is 0.
func asUint(v interface{}) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case uint32:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint8:
		return uint64(x)
	case int64:
		if x > 0 {
			return uint64(x)
		}
	case int32:
		if x > 0 {
			return uint64(x)
		}
	case int16:
		if x > 0 {
			return uint64(x)
		}
	case int8:
		if x > 0 {
			return uint64(x)
		}
	case int:
		if x > 0 {
			return uint64(x)
		}
	}
	return 0
}
