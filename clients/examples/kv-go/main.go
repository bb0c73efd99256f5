// kv-go: the replicated key-value store of clients/examples/kv (kv.py) in Go, on the Go
// client. It reads and writes the same entries and snapshots as kv.py, so a value written
// by one is read by the other on the same cluster:
//
//   - entries: msgpack {"app": "kv", "op": "set"|"del", "k": str, "v": value};
//   - snapshots: msgpack {"app": "kv", "data": {k: v}}.
//
// Entries without "app" that are otherwise kv commands are applied too: that is what kv.py
// wrote before it tagged its entries. Anything else is skipped (another writer shares the
// log), deterministically on every replica.
//
// Each run subscribes from index 1 and rebuilds its state (snapshot first when the log was
// compacted), applies the stream through each write's index (read-your-writes) and through
// a read index before each read (linearizable), and uploads a snapshot every N applied
// entries.
//
//	kv-go [--socket PATH] [--snapshot-every N] set KEY VALUE | get KEY | del KEY | dump | repl
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"raftd"
)

const tag = "kv"

type kv struct {
	cmd, streamConn *raftd.Conn
	stream          *raftd.Subscription
	data            map[string]interface{}
	applied         raftd.Index
	restoredFrom    raftd.Index
	sinceSnapshot   int
	snapshotEvery   int
	skipped         int
	snap            []byte
}

func open(ctx context.Context, sock string, every int) (*kv, error) {
	cmd, err := raftd.Dial(ctx, sock, raftd.WithName("kv-go"))
	if err != nil {
		return nil, err
	}
	sc, err := raftd.Dial(ctx, sock, raftd.WithName("kv-go-stream"))
	if err != nil {
		cmd.Close()
		return nil, err
	}
	sub, err := sc.Subscribe(ctx, 1)
	if err != nil {
		cmd.Close()
		sc.Close()
		return nil, err
	}
	return &kv{cmd: cmd, streamConn: sc, stream: sub, data: map[string]interface{}{}, snapshotEvery: every}, nil
}

func (s *kv) close() {
	s.stream.Close()
	s.streamConn.Close()
	s.cmd.Close()
}

func (s *kv) apply(ctx context.Context, ev raftd.Event) error {
	if ev.Kind == raftd.SnapshotEvent {
		if ev.Offset == 0 {
			s.snap = s.snap[:0]
		}
		s.snap = append(s.snap, ev.Data...)
		if !ev.Done {
			return nil
		}
		var snap struct {
			App  *string                `msgpack:"app"`
			Data map[string]interface{} `msgpack:"data"`
		}
		if err := msgpack.Unmarshal(s.snap, &snap); err != nil || (snap.App != nil && *snap.App != tag) {
			return fmt.Errorf("the node's snapshot at %d was not written by kv (%v)", ev.Index, err)
		}
		s.data = snap.Data
		if s.data == nil {
			s.data = map[string]interface{}{}
		}
		s.applied, s.restoredFrom, s.sinceSnapshot, s.snap = ev.Index, ev.Index, 0, nil
		return nil
	}
	if ev.Index != s.applied+1 {
		return fmt.Errorf("stream gap: %d after %d", ev.Index, s.applied)
	}
	s.applied = ev.Index
	if ev.Type == "data" {
		s.applyCommand(ev)
	}
	s.sinceSnapshot++
	if s.snapshotEvery > 0 && s.sinceSnapshot >= s.snapshotEvery {
		return s.saveSnapshot(ctx)
	}
	return nil
}

func (s *kv) applyCommand(ev raftd.Event) {
	var c map[string]interface{}
	if err := msgpack.Unmarshal(ev.Data, &c); err == nil {
		app, hasApp := c["app"]
		k, kok := c["k"].(string)
		op, _ := c["op"].(string)
		if (!hasApp || app == tag) && kok && (op == "set" || op == "del") {
			if op == "set" {
				s.data[k] = c["v"]
			} else {
				delete(s.data, k)
			}
			return
		}
	}
	s.skipped++
	if s.skipped <= 5 {
		fmt.Fprintf(os.Stderr, "kv-go: warning: skipping entry %d: not a kv command (%.20q)\n", ev.Index, ev.Data)
	}
}

func (s *kv) saveSnapshot(ctx context.Context) error {
	blob, err := msgpack.Marshal(map[string]interface{}{"app": tag, "data": s.data})
	if err != nil {
		return err
	}
	// An upload at or below the node's snapshot is answered with the covering index: fine.
	if _, err := s.cmd.Snapshot(ctx, s.applied, bytes.NewReader(blob), 0); err != nil {
		return err
	}
	s.sinceSnapshot = 0
	return nil
}

func (s *kv) catchUp(ctx context.Context, index raftd.Index) error {
	for s.applied < index {
		ev, err := s.stream.Next(ctx)
		if err != nil {
			return err
		}
		if err := s.apply(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *kv) write(ctx context.Context, c map[string]interface{}) (raftd.Index, error) {
	c["app"] = tag
	b, err := msgpack.Marshal(c)
	if err != nil {
		return 0, err
	}
	ix, _, err := s.cmd.Propose(ctx, b)
	if err != nil {
		return 0, err
	}
	return ix, s.catchUp(ctx, ix)
}

func (s *kv) read(ctx context.Context) error {
	ri, err := s.cmd.ReadIndex(ctx)
	if err != nil {
		return err
	}
	return s.catchUp(ctx, ri)
}

// pyJSON prints like Python's json.dumps(sort_keys=True), so both tools print the same.
func pyJSON(m map[string]interface{}) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		parts = append(parts, string(kb)+": "+string(vb))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (s *kv) run(ctx context.Context, cmd string, args []string) (string, error) {
	switch {
	case cmd == "set" && len(args) == 2:
		ix, err := s.write(ctx, map[string]interface{}{"op": "set", "k": args[0], "v": args[1]})
		return fmt.Sprint(ix), err
	case cmd == "del" && len(args) == 1:
		ix, err := s.write(ctx, map[string]interface{}{"op": "del", "k": args[0]})
		return fmt.Sprint(ix), err
	case cmd == "get" && len(args) == 1:
		if err := s.read(ctx); err != nil {
			return "", err
		}
		v, ok := s.data[args[0]]
		if !ok || v == nil {
			return "(nil)", nil
		}
		return fmt.Sprint(v), nil
	case cmd == "dump" && len(args) == 0:
		if err := s.read(ctx); err != nil {
			return "", err
		}
		return pyJSON(s.data), nil
	case cmd == "status" && len(args) == 0:
		return fmt.Sprintf(`{"applied": %d, "restored_from": %d, "keys": %d, "skipped": %d}`,
			s.applied, s.restoredFrom, len(s.data), s.skipped), nil
	}
	return "", fmt.Errorf("bad command: %s", strings.Join(append([]string{cmd}, args...), " "))
}

func main() {
	sock := flag.String("socket", "", "raftd socket (default $RAFTD_SOCKET, else ./raftd.sock)")
	every := flag.Int("snapshot-every", 100, "save a snapshot every N applied entries (0: never)")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of each command")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: kv-go [--socket PATH] [--snapshot-every N] set K V | get K | del K | dump | repl")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	s, err := open(ctx, *sock, *every)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kv-go:", err)
		os.Exit(3)
	}
	defer s.close()
	one := func(cmd string, a []string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		return s.run(ctx, cmd, a)
	}
	if args[0] != "repl" {
		out, err := one(args[0], args[1:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "kv-go:", err)
			s.close()
			os.Exit(1)
		}
		fmt.Println(out)
		return
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		out, err := one(f[0], f[1:])
		var re *raftd.Error
		switch {
		case errors.As(err, &re):
			fmt.Printf("error %s %s\n", re.Code, re.Message)
		case err != nil:
			fmt.Printf("error %v\n", err)
		default:
			fmt.Println(out)
		}
	}
}
