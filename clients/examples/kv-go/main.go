// kv-go: the replicated key-value store of clients/examples/kv (kv.py) in Go, on the Go
// client. It reads and writes the same entries and snapshots as kv.py, so a value written
// by one is read by the other on the same cluster:
//
//   - entries: msgpack {"app": "kv", "op": "set"|"del", "k": str, "v": value};
//   - snapshots: msgpack {"app": "kv", "data": {k: v}}.
//
// Anything else, untagged entries included, is skipped with a warning (another writer
// shares the log), exactly as kv.py skips it, so a Go and a Python replica of the store
// always hold the same state.
//
// It is a thin user of raftd.ApplyLoop, which follows the commit stream from index 1
// (snapshot first when the log was compacted), reconnects after the daemon restarts, and
// uploads a snapshot every N applied entries. A write returns once applied here
// (read-your-writes); a read waits for the stream through a read index (linearizable).
//
//	kv-go [--socket PATH] [--snapshot-every N] set KEY VALUE | get KEY | del KEY | dump | repl
package main

import (
	"bufio"
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
	loop    *raftd.ApplyLoop
	data    map[string]interface{} // guarded by loop.Lock
	skipped int
}

func open(ctx context.Context, sock string, every int) (*kv, error) {
	s := &kv{data: map[string]interface{}{}}
	s.loop = raftd.StartApplyLoop(raftd.ApplyConfig{
		Sockets: []string{sock}, Name: "kv-go", SnapshotEveryEntries: every,
		Apply: s.apply, Snapshot: s.snapshot, Restore: s.restore,
		Logf: func(format string, a ...interface{}) { fmt.Fprintf(os.Stderr, "kv-go: "+format+"\n", a...) },
	})
	if _, err := s.loop.Conn(ctx); err != nil { // a bad socket is reported before anything else
		s.loop.Close()
		return nil, err
	}
	return s, nil
}

func (s *kv) close() { s.loop.Close() }

// ---- the state machine (called by the apply loop, in index order, under its lock) -------

func (s *kv) apply(ev raftd.Event) error {
	var c map[string]interface{}
	if err := msgpack.Unmarshal(ev.Data, &c); err == nil {
		app, _ := c["app"].(string)
		k, kok := c["k"].(string)
		op, _ := c["op"].(string)
		if app == tag && kok && (op == "set" || op == "del") {
			if op == "set" {
				s.data[k] = c["v"]
			} else {
				delete(s.data, k)
			}
			return nil
		}
	}
	// Not a kv command: another writer shares this cluster's log. Deterministic: every
	// replica skips the same entries.
	s.skipped++
	if s.skipped <= 5 {
		fmt.Fprintf(os.Stderr, "kv-go: warning: skipping entry %d: not a kv command (%.20q)\n", ev.Index, ev.Data)
	}
	return nil
}

func (s *kv) snapshot() ([]byte, error) {
	return msgpack.Marshal(map[string]interface{}{"app": tag, "data": s.data})
}

func (s *kv) restore(blob []byte) error {
	var snap struct {
		App  *string                `msgpack:"app"`
		Data map[string]interface{} `msgpack:"data"`
	}
	if err := msgpack.Unmarshal(blob, &snap); err != nil {
		return err
	}
	if snap.App != nil && *snap.App != tag {
		return fmt.Errorf("the node's snapshot was not written by kv (app %q)", *snap.App)
	}
	s.data = snap.Data
	if s.data == nil {
		s.data = map[string]interface{}{}
	}
	return nil
}

// ---- the application's API ------------------------------------------------------------------

func (s *kv) write(ctx context.Context, c map[string]interface{}) (raftd.Index, error) {
	c["app"] = tag
	b, err := msgpack.Marshal(c)
	if err != nil {
		return 0, err
	}
	ix, _, err := s.loop.Propose(ctx, b) // applied here on return (read-your-writes)
	return ix, err
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
		if _, err := s.loop.LinearizableRead(ctx); err != nil {
			return "", err
		}
		s.loop.Lock()
		defer s.loop.Unlock()
		v, ok := s.data[args[0]]
		if !ok || v == nil {
			return "(nil)", nil
		}
		return fmt.Sprint(v), nil
	case cmd == "dump" && len(args) == 0:
		if _, err := s.loop.LinearizableRead(ctx); err != nil {
			return "", err
		}
		s.loop.Lock()
		defer s.loop.Unlock()
		return pyJSON(s.data), nil
	case cmd == "status" && len(args) == 0:
		s.loop.Lock()
		defer s.loop.Unlock()
		return fmt.Sprintf(`{"applied": %d, "restored_from": %d, "keys": %d, "skipped": %d}`,
			s.loop.Applied(), s.loop.RestoredFrom(), len(s.data), s.skipped), nil
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
