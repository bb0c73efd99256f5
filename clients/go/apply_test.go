package raftd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The fake ends every subscription after three entries (SHUTTING_DOWN), so the loop must
// resubscribe from where it stopped again and again.
func TestApplyLoopResubscribesFromItsAppliedIndexAndSnapshotsByPolicy(t *testing.T) {
	f := newFake(t)
	var got []Index
	l := StartApplyLoop(ApplyConfig{Sockets: []string{f.path}, ReconnectMin: time.Millisecond,
		Apply:                func(e Event) error { got = append(got, e.Index); return nil },
		Snapshot:             func() ([]byte, error) { return []byte(fmt.Sprint(len(got))), nil },
		Restore:              func([]byte) error { return nil },
		SnapshotEveryEntries: 4, Logf: t.Logf})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.WaitApplied(ctx, 12); err != nil {
		t.Fatal(err)
	}
	l.Lock()
	for i, ix := range got {
		if ix != Index(i+1) {
			t.Fatalf("applied %v: not contiguous from 1", got)
		}
	}
	l.Unlock()
	if l.Connects() < 4 {
		t.Fatalf("%d subscriptions for 12 entries of 3 each", l.Connects())
	}
	var froms []uint64
	for _, m := range f.requests("subscribe") {
		froms = append(froms, asUint(m["from"]))
	}
	if froms[0] != 1 || froms[1] != 4 || froms[2] != 7 {
		t.Fatalf("subscribed from %v", froms)
	}
	for deadline := time.Now().Add(5 * time.Second); l.SnapshotsSaved() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots saved", l.SnapshotsSaved())
		}
	}
	for _, m := range f.requests("snapshot") {
		if ix := asUint(m["index"]); ix%4 != 0 {
			t.Fatalf("a snapshot at %d: not every 4 entries", ix)
		}
	}
}

func TestApplyLoopStopsForGoodWhenApplyFails(t *testing.T) {
	f := newFake(t)
	boom := errors.New("boom")
	l := StartApplyLoop(ApplyConfig{Sockets: []string{f.path}, Logf: t.Logf,
		Apply: func(e Event) error {
			if e.Index == 2 {
				return boom
			}
			return nil
		}})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.WaitApplied(ctx, 5); !errors.Is(err, boom) || !errors.Is(l.Err(), boom) {
		t.Fatalf("want the apply error, got %v / %v", err, l.Err())
	}
	if l.Applied() != 1 {
		t.Fatalf("applied %d, want 1 (entry 2 failed)", l.Applied())
	}
}

func TestApplyLoopProposeWaitsUntilApplied(t *testing.T) {
	f := newFake(t)
	l := StartApplyLoop(ApplyConfig{Sockets: []string{f.path}, Logf: t.Logf, ReconnectMin: time.Millisecond,
		Apply: func(Event) error { return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ix, _, err := l.Propose(ctx, []byte("x"))
	if err != nil || l.Applied() < ix {
		t.Fatalf("propose: %d %v, applied %d", ix, err, l.Applied())
	}
	l.Close()
	if _, err := l.WaitApplied(ctx, 1000); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if left := clientGoroutines(); left != "" {
		deadline := time.Now().Add(5 * time.Second)
		for clientGoroutines() != "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if left = clientGoroutines(); left != "" {
			t.Fatalf("goroutines left after Close:\n%s", left)
		}
	}
}
