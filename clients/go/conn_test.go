package raftd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// fakeServer speaks the framing and answers a few ops the way raftd does; the tests use it
// to pin the client's own behaviour (matching, errors, deadlines, goroutines).
type fakeServer struct {
	t     *testing.T
	ln    net.Listener
	path  string
	mu    sync.Mutex
	seen  []map[string]interface{} // every request, in arrival order
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFake(t *testing.T) *fakeServer {
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, ln: ln, path: path}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, nc)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.serve(nc) }()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeServer) requests(op string) []map[string]interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]interface{}
	for _, m := range f.seen {
		if m["op"] == op {
			out = append(out, m)
		}
	}
	return out
}

func frame(m map[string]interface{}) []byte {
	b, err := msgpack.Marshal(m)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	return append(out, b...)
}

func errReply(id interface{}, code, msg string) map[string]interface{} {
	return map[string]interface{}{"id": id, "ok": false, "error": map[string]interface{}{
		"code": code, "message": msg, "leader": map[string]interface{}{"node": 2, "addr": "h:1"}}}
}

// serve answers each read's worth of requests in reverse order (replies in any order are
// the protocol's rule), proposals with consecutive indexes in arrival order.
func (f *fakeServer) serve(nc net.Conn) {
	r := bufio.NewReader(nc)
	var index uint64
	for {
		var batch []map[string]interface{}
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
			var m map[string]interface{}
			if err := msgpack.Unmarshal(body, &m); err != nil {
				f.t.Errorf("client sent an undecodable frame: %v", err)
				return
			}
			f.mu.Lock()
			f.seen = append(f.seen, m)
			f.mu.Unlock()
			batch = append(batch, m)
			if r.Buffered() == 0 {
				break
			}
		}
		var out bytes.Buffer
		for i := len(batch) - 1; i >= 0; i-- {
			m := batch[i]
			id := m["id"]
			ok := map[string]interface{}{"id": id, "ok": true}
			switch m["op"] {
			case "hello":
				ok["version"], ok["node_id"], ok["cluster"] = 1, 1, "fake"
				ok["max_frame"], ok["max_entry"] = 1<<24, 1<<20
			case "propose":
				d := string(m["data"].([]byte))
				switch d {
				case "hang":
					continue
				case "drop":
					nc.Close()
					return
				case "UNAVAILABLE", "EXPIRED", "WEIRD", "SHUTTING_DOWN":
					out.Write(frame(errReply(id, d, "as asked")))
					continue
				}
				ok["index"], ok["term"] = 0, 3
				if m["client"] != nil {
					ok["duplicate"] = true
				}
			case "read_index":
				continue // never answered
			case "subscribe":
				out.Write(frame(ok))
				from := int(asUint(m["from"]))
				if from == 0 {
					from = 1
				}
				for j := from; j < from+3; j++ {
					out.Write(frame(map[string]interface{}{"ev": "entry", "id": id, "index": j,
						"term": 1, "type": "data", "data": []byte(fmt.Sprint("e", j))}))
				}
				out.Write(frame(map[string]interface{}{"ev": "end", "id": id,
					"error": map[string]interface{}{"code": "SHUTTING_DOWN", "message": "bye"}}))
				continue
			case "snapshot":
				if m["done"] == true {
					ok["index"] = m["index"]
				}
			}
			out.Write(frame(ok))
		}
		// Proposals get their indexes in arrival order, whatever order the replies go in.
		if _, err := nc.Write(rewriteIndexes(out.Bytes(), batch, &index)); err != nil {
			return
		}
	}
}

// rewriteIndexes fills in the index of each proposal reply: consecutive, in arrival order.
func rewriteIndexes(bs []byte, batch []map[string]interface{}, next *uint64) []byte {
	idx := map[interface{}]uint64{}
	for _, m := range batch {
		if m["op"] == "propose" {
			*next++
			idx[fmt.Sprint(m["id"])] = *next
		}
	}
	var out bytes.Buffer
	for len(bs) > 0 {
		n := binary.BigEndian.Uint32(bs)
		var m map[string]interface{}
		_ = msgpack.Unmarshal(bs[4:4+n], &m)
		bs = bs[4+n:]
		if i, ok := idx[fmt.Sprint(m["id"])]; ok && m["ok"] == true {
			m["index"] = i
		}
		out.Write(frame(m))
	}
	return out.Bytes()
}

func dial(t *testing.T, f *fakeServer) *Conn {
	c, err := Dial(context.Background(), f.path, WithName("unit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialSendsHelloAndReportsTheServer(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	if h := c.Server(); h.Cluster != "fake" || h.MaxEntry != 1<<20 {
		t.Fatalf("hello: %+v", h)
	}
	hs := f.requests("hello")
	if len(hs) != 1 || hs[0]["name"] != "unit" {
		t.Fatalf("hello requests: %v", hs)
	}
}

func TestManyGoroutinesPipelineOnOneConnectionAndKeepTheirOrder(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	const workers, each = 16, 50
	got := make([][]Index, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ix, term, err := c.Propose(context.Background(), []byte(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil || term != 3 {
					t.Errorf("propose: %v %d", err, term)
					return
				}
				got[w] = append(got[w], ix)
			}
		}(w)
	}
	wg.Wait()
	seen := map[Index]bool{}
	for w, idx := range got {
		for i, ix := range idx {
			if seen[ix] || (i > 0 && ix <= idx[i-1]) {
				t.Fatalf("worker %d: indexes %v not unique and increasing", w, idx)
			}
			seen[ix] = true
		}
	}
	// The server saw each worker's proposals in that worker's order.
	pos := map[string]int{}
	for i, m := range f.requests("propose") {
		pos[string(m["data"].([]byte))] = i
	}
	for w := 0; w < workers; w++ {
		for i := 1; i < each; i++ {
			if pos[fmt.Sprintf("w%d-%d", w, i)] < pos[fmt.Sprintf("w%d-%d", w, i-1)] {
				t.Fatalf("worker %d: proposal %d reached the server before %d", w, i, i-1)
			}
		}
	}
}

func TestAProposalWhoseContextEndsAfterSendingIsIndeterminate(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := c.Propose(ctx, []byte("hang"))
	if !errors.Is(err, ErrIndeterminate) || !errors.Is(err, context.DeadlineExceeded) || IsNotCommitted(err) {
		t.Fatalf("want INDETERMINATE wrapping the deadline, got %v", err)
	}
	if reqs := f.requests("propose"); len(reqs) != 1 || reqs[0]["timeout_ms"] == nil {
		t.Fatalf("the proposal carries the deadline as timeout_ms: %v", reqs)
	}
	// A read whose context ends is a TIMEOUT: nothing was done.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := c.ReadIndex(ctx2); !errors.Is(err, ErrTimeout) || errors.Is(err, ErrIndeterminate) {
		t.Fatalf("read_index: %v", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("the connection stays usable: %v", err)
	}
}

func TestAContextEndedBeforeSendingSendsNothing(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.Propose(ctx, []byte("x"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrIndeterminate) || !IsNotCommitted(err) {
		t.Fatalf("got %v", err)
	}
	c.Ping(context.Background())
	if n := len(f.requests("propose")); n != 0 {
		t.Fatalf("%d proposals reached the server", n)
	}
}

func TestLosingTheConnectionMakesSentProposalsIndeterminate(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	done := make(chan error, 1)
	go func() { _, _, err := c.Propose(context.Background(), []byte("hang")); done <- err }()
	for len(f.requests("propose")) == 0 {
		time.Sleep(time.Millisecond)
	}
	_, _, err := c.Propose(context.Background(), []byte("drop"))
	for _, e := range []error{err, <-done} {
		if !errors.Is(e, ErrIndeterminate) || !errors.Is(e, ErrConnection) {
			t.Fatalf("in-flight proposal: %v", e)
		}
	}
	_, _, err = c.Propose(context.Background(), []byte("later"))
	if !errors.Is(err, ErrConnection) || errors.Is(err, ErrIndeterminate) || !IsNotCommitted(err) {
		t.Fatalf("a proposal after the loss is not sent: %v", err)
	}
}

func TestServerErrorsAreTypedValues(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	ctx := context.Background()
	_, _, err := c.Propose(ctx, []byte("UNAVAILABLE"))
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Leader == nil || e.Leader.Node != 2 ||
		!IsNotCommitted(err) {
		t.Fatalf("UNAVAILABLE: %v", err)
	}
	if _, _, err = c.Propose(ctx, []byte("EXPIRED")); !errors.Is(err, ErrIndeterminate) || !errors.Is(err, ErrExpired) {
		t.Fatalf("EXPIRED counts as INDETERMINATE: %v", err)
	}
	if _, _, err = c.Propose(ctx, []byte("SHUTTING_DOWN")); !errors.Is(err, ErrIndeterminate) {
		t.Fatalf("a proposal's SHUTTING_DOWN counts as INDETERMINATE: %v", err)
	}
	if _, _, err = c.Propose(ctx, []byte("WEIRD")); !errors.Is(err, ErrInternal) {
		t.Fatalf("an unknown code counts as INTERNAL: %v", err)
	}
}

func TestSessionFieldsAndDuplicateFlag(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	s := NewSession()
	var dup bool
	if _, _, err := c.Propose(context.Background(), []byte("x"), WithSession(s.ID, s.Next()), ReportDuplicate(&dup)); err != nil || !dup {
		t.Fatalf("propose: %v dup=%v", err, dup)
	}
	m := f.requests("propose")[0]
	if asUint(m["client"]) != s.ID || asUint(m["seq"]) != 1 {
		t.Fatalf("fields: %v", m)
	}
}

func TestSubscriptionDeliversInOrderThenTheServersEnd(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	sub, err := c.Subscribe(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for j := 1; j <= 3; j++ {
		e, err := sub.Next(context.Background())
		if err != nil || e.Index != Index(j) || string(e.Data) != fmt.Sprint("e", j) {
			t.Fatalf("event %d: %+v %v", j, e, err)
		}
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("end: %v", err)
	}
	if asUint(f.requests("subscribe")[0]["from"]) != 1 {
		t.Fatal("from not sent")
	}
}

func TestSnapshotIsUploadedInChunksFromAReader(t *testing.T) {
	f := newFake(t)
	c := dial(t, f)
	state := bytes.Repeat([]byte("abcde"), 5) // 25 bytes: chunks 10, 10, 5
	ix, err := c.Snapshot(context.Background(), 7, bytes.NewReader(state), 10)
	if err != nil || ix != 7 {
		t.Fatalf("snapshot: %d %v", ix, err)
	}
	var got []byte
	reqs := f.requests("snapshot")
	for i, m := range reqs {
		if asUint(m["offset"]) != uint64(len(got)) || (m["done"] == true) != (i == len(reqs)-1) {
			t.Fatalf("chunk %d: %v", i, m)
		}
		got = append(got, m["data"].([]byte)...)
	}
	if len(reqs) != 3 || !bytes.Equal(got, state) {
		t.Fatalf("%d chunks, %q", len(reqs), got)
	}
	// An exact multiple of the chunk size ends with an empty done chunk or a full one.
	if _, err := c.Snapshot(context.Background(), 8, bytes.NewReader(state[:20]), 10); err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeavesNoGoroutineBehind(t *testing.T) {
	f := newFake(t)
	for i := 0; i < 5; i++ {
		c, err := Dial(context.Background(), f.path)
		if err != nil {
			t.Fatal(err)
		}
		go c.Propose(context.Background(), []byte("hang"))
		if _, err := c.Subscribe(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		c.Ping(context.Background())
		closeWithin(t, c, 5*time.Second)
		closeWithin(t, c, time.Second) // twice is fine
	}
	// Close waits for the reader and writer; the abandoned Propose returns at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := clientGoroutines()
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of the client still running:\n%s", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closeWithin fails the test when Close does not return in time (it waits for the
// connection's goroutines, so a goroutine that never ends shows up here).
func closeWithin(t *testing.T, c *Conn, d time.Duration) {
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Close did not return within %v:\n%s", d, clientGoroutines())
	}
}

// clientGoroutines returns the stacks of goroutines running this package's code (the
// tests and the fake server excepted).
func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "raftd.(*Conn)") || strings.Contains(g, "raftd.(*Subscription)") {
			if !strings.Contains(g, "raftd.Test") && !strings.Contains(g, "raftd.(*fakeServer)") {
				out = append(out, g)
			}
		}
	}
	return strings.Join(out, "\n\n")
}
