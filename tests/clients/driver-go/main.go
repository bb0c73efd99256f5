// The Go client's driver of the conformance scenarios (tests/clients/scenarios.txt), run by
// tests/clients/conformance.py against a real 3-node cluster:
//
//	client_driver_go --scenario NAME --nodes 1=SOCK,2=SOCK,3=SOCK --leader ID --spare ID
//
// It prints "result: pass" or "result: fail: WHY" last, asks the harness for faults on
// stdout ("@kill-leader", "@pause IDS", "@resume") and reads its "ok ..." answer on stdin.
// `--bench SOCK` instead measures proposals/s with 64 in flight on one connection.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"raftd"
)

var (
	nodes  = map[raftd.NodeID]string{}
	leader raftd.NodeID
	spare  raftd.NodeID
	stdin  = bufio.NewReader(os.Stdin)
	bg     = context.Background()
)

type failure string

func check(cond bool, format string, a ...interface{}) {
	if !cond {
		panic(failure(fmt.Sprintf(format, a...)))
	}
}

func must(err error, what string) {
	if err != nil {
		panic(failure(fmt.Sprintf("%s: %v", what, err)))
	}
}

func dial(id raftd.NodeID) *raftd.Conn {
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	c, err := raftd.Dial(ctx, nodes[id], raftd.WithName("conformance-go"))
	must(err, fmt.Sprintf("dial node %d", id))
	return c
}

func followers() []raftd.NodeID {
	var out []raftd.NodeID
	for id := range nodes {
		if id != leader {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ask sends a fault request to the harness and returns its answer (after "ok").
func ask(req string) string {
	fmt.Println(req)
	line, err := stdin.ReadString('\n')
	must(err, "harness answer")
	check(strings.HasPrefix(line, "ok"), "harness refused %q: %s", req, line)
	return strings.TrimSpace(strings.TrimPrefix(line, "ok"))
}

func ctxT(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(bg, d)
	_ = cancel // released when the deadline passes; the driver is short-lived
	return ctx
}

// entry is one event of a stream: an entry, or a whole snapshot (Type "snapshot").
type entry struct {
	Index raftd.Index
	Type  string
	Data  []byte
}

// stream reads node's commit stream from `from` through `upto`, checking contiguity.
func stream(id raftd.NodeID, from, upto raftd.Index) []entry {
	c := dial(id)
	defer c.Close()
	ctx := ctxT(30 * time.Second)
	sub, err := c.Subscribe(ctx, from)
	must(err, "subscribe")
	defer sub.Close()
	var out []entry
	var snap []byte
	last := from - 1
	for last < upto {
		ev, err := sub.Next(ctx)
		must(err, fmt.Sprintf("node %d stream after %d", id, last))
		if ev.Kind == raftd.SnapshotEvent {
			if ev.Offset == 0 {
				snap = nil
			}
			snap = append(snap, ev.Data...)
			if ev.Done {
				out = append(out, entry{ev.Index, "snapshot", snap})
				last = ev.Index
			}
			continue
		}
		check(ev.Index == last+1, "node %d: stream gap %d -> %d", id, last, ev.Index)
		last = ev.Index
		out = append(out, entry{ev.Index, ev.Type, ev.Data})
	}
	return out
}

func payloads(es []entry) map[string][]raftd.Index {
	m := map[string][]raftd.Index{}
	for _, e := range es {
		if e.Type == "data" {
			m[string(e.Data)] = append(m[string(e.Data)], e.Index)
		}
	}
	return m
}

func readIndex(id raftd.NodeID) raftd.Index {
	c := dial(id)
	defer c.Close()
	ix, err := c.ReadIndex(ctxT(10 * time.Second))
	must(err, "read_index")
	return ix
}

// ---- scenarios --------------------------------------------------------------------------

func ping() {
	id := followers()[0]
	c := dial(id)
	defer c.Close()
	h := c.Server()
	check(h.NodeID == id && h.Cluster != "" && h.Version == 1, "hello: %+v", h)
	must(c.Ping(ctxT(5*time.Second)), "ping")
}

func proposeConcurrent() {
	id := followers()[0]
	c := dial(id)
	defer c.Close()
	const workers, each = 8, 50
	acked := make([][]raftd.Index, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) { // each worker pipelines its 50 proposals, then collects them
			defer wg.Done()
			ps := make([]*raftd.Proposal, each)
			for i := range ps {
				ps[i] = c.ProposeAsync(ctxT(30*time.Second), []byte(fmt.Sprintf("go-w%d-%d", w, i)))
			}
			for _, p := range ps {
				ix, _, err := p.Wait()
				if err != nil {
					errs <- err
					return
				}
				acked[w] = append(acked[w], ix)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(err, "propose")
	}
	var top raftd.Index
	seen := map[raftd.Index]bool{}
	for _, idx := range acked {
		for _, ix := range idx {
			check(!seen[ix], "index %d acknowledged twice", ix)
			seen[ix] = true
			if ix > top {
				top = ix
			}
		}
	}
	got := payloads(stream(id, 1, top))
	for w := range acked {
		for i, ix := range acked[w] {
			p := fmt.Sprintf("go-w%d-%d", w, i)
			check(len(got[p]) == 1 && got[p][0] == ix, "%s acked at %d, stream has %v", p, ix, got[p])
		}
	}
}

func perConnectionOrder() {
	c := dial(leader)
	defer c.Close()
	const n = 200
	ps := make([]*raftd.Proposal, n)
	for i := range ps { // pipelined: all 200 in flight, sent in this order
		ps[i] = c.ProposeAsync(ctxT(30*time.Second), []byte(fmt.Sprintf("go-order-%d", i)))
	}
	res := make([]raftd.Index, n)
	errs := make([]error, n)
	for i, p := range ps {
		res[i], _, errs[i] = p.Wait()
	}
	for i := 0; i < n; i++ {
		must(errs[i], "propose")
		check(i == 0 || res[i] > res[i-1], "acknowledged %d at %d, not after %d", i, res[i], res[max(i-1, 0)])
	}
	got := payloads(stream(leader, res[0], res[n-1]))
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("go-order-%d", i)
		check(len(got[p]) == 1 && got[p][0] == res[i], "%s: %v want %d", p, got[p], res[i])
	}
}

func subscribeFrom1() {
	id := followers()[1]
	top := readIndex(id)
	s := stream(id, 1, top)
	check(len(s) > 0, "empty stream")
	if s[0].Type == "snapshot" {
		check(len(s) == 1 || s[1].Index == s[0].Index+1, "entries continue after the snapshot")
	} else {
		check(s[0].Index == 1, "starts at %d", s[0].Index)
	}
}

func subscribeFromMiddle() {
	c := dial(leader)
	defer c.Close()
	var idx []raftd.Index
	for i := 0; i < 20; i++ {
		ix, _, err := c.Propose(ctxT(10*time.Second), []byte(fmt.Sprintf("go-mid-%d", i)))
		must(err, "propose")
		idx = append(idx, ix)
	}
	s := stream(followers()[0], idx[9], idx[19])
	check(s[0].Index == idx[9] && string(s[0].Data) == "go-mid-9", "first event %+v", s[0])
	got := payloads(s)
	for i := 9; i < 20; i++ {
		p := fmt.Sprintf("go-mid-%d", i)
		check(len(got[p]) == 1 && got[p][0] == idx[i], "%s: %v", p, got[p])
	}
}

func subscribeAfterCompaction() {
	c := dial(leader)
	defer c.Close()
	big := bytes.Repeat([]byte("x"), 64<<10)
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, errs[i] = c.Propose(ctxT(30*time.Second), append([]byte(fmt.Sprintf("go-big-%d-", i)), big...))
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		must(err, "propose")
	}
	ix, err := c.ReadIndex(ctxT(10 * time.Second))
	must(err, "read_index")
	stream(leader, ix, ix) // the application applied through ix
	state := []byte(fmt.Sprintf("go-state-through-%d", ix))
	got, err := c.Snapshot(ctxT(30*time.Second), ix, bytes.NewReader(state), 7)
	must(err, "snapshot")
	check(got == ix, "snapshot index %d, want %d", got, ix)
	st, err := c.Status(ctxT(5 * time.Second))
	must(err, "status")
	check(st.FirstIndex > 1 && st.SnapIndex == ix, "log compacted: %+v", st)
	var last raftd.Index
	for i := 0; i < 3; i++ {
		last, _, err = c.Propose(ctxT(10*time.Second), []byte(fmt.Sprintf("go-after-%d", i)))
		must(err, "propose")
	}
	s := stream(leader, 1, last)
	check(s[0].Type == "snapshot" && s[0].Index == ix && bytes.Equal(s[0].Data, state),
		"stream starts with the snapshot: %v %d %.40q", s[0].Type, s[0].Index, s[0].Data)
	for k, e := range s[1:] {
		check(e.Index == ix+1+raftd.Index(k), "entry %d after the snapshot is %d", k, e.Index)
	}
}

func readIndexFollower() {
	c := dial(leader)
	defer c.Close()
	ix, _, err := c.Propose(ctxT(10*time.Second), []byte("go-ri"))
	must(err, "propose")
	f := followers()[0]
	ri := readIndex(f)
	check(ri >= ix, "read_index %d < committed %d", ri, ix)
	got := payloads(stream(f, ix, ri))
	check(len(got["go-ri"]) == 1 && got["go-ri"][0] == ix, "follower stream: %v", got["go-ri"])
}

func membership() {
	c := dial(followers()[0])
	defer c.Close()
	ctx := ctxT(60 * time.Second)
	voter := func(m raftd.Membership) (bool, bool) { x, ok := m.Member(spare); return x.Voter, ok }
	m, err := c.AddMember(ctx, spare, "127.0.0.1:1", true)
	must(err, "add_member")
	v, ok := voter(m)
	check(ok && !v, "added as a learner: %+v", m)
	m, err = c.Promote(ctx, spare)
	must(err, "promote")
	v, ok = voter(m)
	check(ok && v, "promoted: %+v", m)
	m, err = c.Demote(ctx, spare)
	must(err, "demote")
	v, ok = voter(m)
	check(ok && !v, "demoted: %+v", m)
	m, err = c.RemoveMember(ctx, spare)
	must(err, "remove_member")
	_, ok = voter(m)
	check(!ok, "removed: %+v", m)
	m, err = c.ChangeMembers(ctx, []raftd.MemberSpec{{Node: spare, Addr: "127.0.0.1:1", Learner: true}}, nil)
	must(err, "change_members add")
	_, ok = voter(m)
	check(ok && !m.Joint, "change_members added: %+v", m)
	m, err = c.ChangeMembers(ctx, nil, []raftd.NodeID{spare})
	must(err, "change_members remove")
	_, ok = voter(m)
	check(!ok, "change_members removed: %+v", m)
	m, err = c.Members(ctx)
	must(err, "members")
	check(len(m.Members) == 3, "three members again: %+v", m)
	_, err = c.RemoveMember(ctx, 99)
	check(errors.Is(err, raftd.ErrBadRequest) || errors.Is(err, raftd.ErrNotFound), "remove 99: %v", err)
}

func transfer() {
	f := followers()[0]
	c := dial(f)
	defer c.Close()
	got, err := c.TransferLeader(ctxT(30*time.Second), f)
	must(err, "transfer_leader")
	check(got == f, "transfer answered %d", got)
	st, err := c.Status(ctxT(5 * time.Second))
	must(err, "status")
	check(st.Role == "leader", "role after transfer: %s", st.Role)
}

func campaign() {
	f := followers()[0]
	c := dial(f)
	defer c.Close()
	st, err := c.Status(ctxT(5 * time.Second))
	must(err, "status")
	t, err := c.Campaign(ctxT(10 * time.Second))
	must(err, "campaign")
	// With pre-vote the node campaigns in its current term until the pre-vote succeeds.
	check(t >= st.Term, "campaign term %d, was %d", t, st.Term)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err = c.Status(ctxT(5 * time.Second))
		must(err, "status")
		if st.Leader != 0 {
			return
		}
		check(time.Now().Before(deadline), "no leader after the campaign")
		time.Sleep(20 * time.Millisecond)
	}
}

func badInput() {
	c := dial(leader)
	defer c.Close()
	ctx := ctxT(10 * time.Second)
	_, _, err := c.Propose(ctx, make([]byte, c.Server().MaxEntry+1))
	check(errors.Is(err, raftd.ErrTooLarge), "oversized proposal: %v", err)
	must(c.Ping(ctx), "ping after TOO_LARGE")
	_, err = c.Call(ctx, "unsubscribe", map[string]interface{}{"sub": uint64(987654)})
	check(errors.Is(err, raftd.ErrNotFound), "unsubscribe unknown: %v", err)
	st, err := c.Status(ctx)
	must(err, "status")
	_, err = c.Snapshot(ctx, st.Commit+1000, bytes.NewReader([]byte("s")), 0)
	check(errors.Is(err, raftd.ErrBadRequest), "snapshot above commit: %v", err)
	_, err = c.Call(ctx, "frobnicate", nil) // Go and Python can send any op
	check(errors.Is(err, raftd.ErrUnknownOp), "unknown op: %v", err)
	must(c.Ping(ctx), "ping at the end")
}

func deadline() {
	c := dial(leader)
	defer c.Close()
	fs := followers()
	ask(fmt.Sprintf("@pause %d,%d", fs[0], fs[1]))
	start := time.Now()
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	_, _, err := c.Propose(ctx, []byte("go-deadline"))
	cancel()
	took := time.Since(start)
	ask("@resume")
	check(err != nil, "the proposal committed with both followers paused")
	check(took < 2*time.Second, "answered after %v", took)
	check(!raftd.IsNotCommitted(err) && (errors.Is(err, raftd.ErrIndeterminate) || errors.Is(err, raftd.ErrTimeout)),
		"error claims more than it knows: %v", err)
	_, _, err = c.Propose(ctxT(20*time.Second), []byte("go-after-deadline"))
	must(err, "propose after resume")
}

func killLeader() {
	id := followers()[0]
	c := dial(id)
	defer c.Close()
	var mu sync.Mutex
	acked := map[string]raftd.Index{}
	var unknown, notCommitted atomic.Int64
	var seq atomic.Int64
	// 16 goroutines, one connection, each proposing in a loop.
	stop := proposers(16, func() {
		p := fmt.Sprintf("go-k-%d", seq.Add(1))
		ix, _, err := c.Propose(ctxT(15*time.Second), []byte(p))
		switch {
		case err == nil:
			mu.Lock()
			acked[p] = ix
			mu.Unlock()
		case raftd.IsNotCommitted(err):
			notCommitted.Add(1)
			time.Sleep(10 * time.Millisecond) // no leader yet: back off a little
		default:
			unknown.Add(1)
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor := func(n int, what string) {
		deadline := time.Now().Add(30 * time.Second)
		for count() < n {
			check(time.Now().Before(deadline), "timed out waiting for %s (%d acked)", what, count())
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(100, "100 acknowledged proposals")
	newLeader, err := strconv.Atoi(ask("@kill-leader"))
	must(err, "new leader id")
	delete(nodes, leader)
	leader = raftd.NodeID(newLeader)
	waitFor(count()+100, "100 more after the kill")
	stop()
	top := readIndex(leader)
	for nid := range nodes {
		got := payloads(stream(nid, 1, top))
		for p, ix := range acked {
			check(len(got[p]) == 1, "node %d: %s (acked at %d) seen at %v", nid, p, ix, got[p])
		}
		for p, at := range got {
			check(len(at) == 1, "node %d: %s twice, at %v", nid, p, at)
		}
	}
	fmt.Fprintf(os.Stderr, "acknowledged %d, indeterminate %d, not committed %d\n", len(acked), unknown.Load(), notCommitted.Load())
}

var scenarios = map[string]func(){
	"ping": ping, "propose_concurrent": proposeConcurrent, "per_connection_order": perConnectionOrder,
	"subscribe_from_1": subscribeFrom1, "subscribe_from_middle": subscribeFromMiddle,
	"subscribe_after_compaction": subscribeAfterCompaction, "read_index_follower": readIndexFollower,
	"membership": membership, "transfer": transfer, "campaign": campaign, "bad_input": badInput,
	"deadline": deadline, "kill_leader": killLeader,
}

func main() {
	name := flag.String("scenario", "", "scenario name (tests/clients/scenarios.txt)")
	nodeList := flag.String("nodes", "", "ID=SOCKET,...")
	lead := flag.Uint64("leader", 0, "the leader's node id")
	sp := flag.Uint64("spare", 0, "a node id that is not a member")
	bench := flag.String("bench", "", "measure proposals/s on this socket instead")
	seconds := flag.Float64("seconds", 5, "bench: seconds to measure")
	flag.Parse()
	if *bench != "" {
		runBench(*bench, *seconds)
		return
	}
	for _, kv := range strings.Split(*nodeList, ",") {
		parts := strings.SplitN(kv, "=", 2)
		if len(parts) == 2 {
			id, _ := strconv.ParseUint(parts[0], 10, 64)
			nodes[raftd.NodeID(id)] = parts[1]
		}
	}
	leader, spare = raftd.NodeID(*lead), raftd.NodeID(*sp)
	fn, ok := scenarios[*name]
	if !ok {
		fmt.Printf("result: fail: the Go driver has no scenario %q\n", *name)
		os.Exit(1)
	}
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Printf("result: fail: %s\n", string(f))
				os.Exit(1)
			}
			panic(r)
		}
	}()
	fn()
	noClientGoroutines()
	fmt.Println("result: pass")
}

// noClientGoroutines: every Conn of the scenario was closed, so none of the client's
// goroutines may be left (Close waits for its reader and writer; callers return at once).
func noClientGoroutines() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "raftd.(*Conn)") || strings.Contains(g, "raftd.(*Subscription)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		check(time.Now().Before(deadline), "goroutines of the client left after Close:\n%s", strings.Join(left, "\n\n"))
		time.Sleep(5 * time.Millisecond)
	}
}

// runBench: 64 goroutines proposing 256-byte entries on one connection (64 in flight).
func runBench(sock string, seconds float64) {
	c, err := raftd.Dial(bg, sock, raftd.WithName("bench-go"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("b"), 256)
	var n, failed atomic.Int64
	var measuring atomic.Bool
	stop := proposers(64, func() {
		_, _, err := c.Propose(bg, data)
		if measuring.Load() {
			if err != nil {
				failed.Add(1)
			} else {
				n.Add(1)
			}
		}
	})
	time.Sleep(time.Second) // warm-up
	measuring.Store(true)
	start := time.Now()
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	measuring.Store(false)
	el := time.Since(start).Seconds()
	stop()
	fmt.Printf("{\"client\": \"go\", \"proposals_per_s\": %.0f, \"failed\": %d}\n", float64(n.Load())/el, failed.Load())
}

// proposers runs `one` in a loop on n goroutines; the function it returns stops them and
// waits until they have.
func proposers(n int, one func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				one()
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}
