#!/usr/bin/env python3
"""A replicated key-value store on raftd: the example of how an application uses it.

The application keeps its state (a dict) itself. raftd only orders and stores commands:

  - writes are proposed as entries (msgpack {"op": "set"|"del", "k", "v"});
  - every replica applies the commit stream, in index order, to its dict;
  - a linearizable get asks raftd for a read index, applies the stream through it, then
    reads the dict (docs/protocol.md 6.5);
  - every N applied entries the replica saves its dict as a snapshot through the applied
    index, so raftd may compact its log;
  - on (re)start the replica subscribes from index 1: raftd sends the latest snapshot
    first (when the log was compacted), then the entries after it.

Usage:
  kv.py [--socket PATH] [--snapshot-every N] set KEY VALUE
  kv.py [--socket PATH] get KEY
  kv.py [--socket PATH] dump                 # every key, linearizable
  kv.py [--socket PATH] repl                 # commands from stdin, one per line:
                                             #   set K V | del K | get K | dump | status
Each run starts from nothing and restores from raftd, which shows restore-on-restart.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import msgpack  # noqa: E402
from raftd_client import Client, RaftdError  # noqa: E402


class KV:
    def __init__(self, socket_path=None, snapshot_every=100):
        self.cmd = Client(socket_path, name="kv")           # requests
        self.stream_conn = Client(socket_path, name="kv-stream")  # the commit stream
        self.snapshot_every = snapshot_every
        self.data = {}
        self.applied = 0
        self.since_snapshot = 0
        self.restored_from = 0          # index of the snapshot the state was restored from
        self.snap_buf = bytearray()
        self.stream = self.stream_conn.subscribe(from_=1)

    def close(self):
        self.cmd.close()
        self.stream_conn.close()

    # ---- applying the stream ----------------------------------------------------------------

    def _apply(self, ev):
        if ev.kind == "snapshot":
            if ev.offset == 0:
                self.snap_buf = bytearray()
            self.snap_buf += ev.data
            if ev.done:
                # Replace the state wholesale: the snapshot is the truth through ev.index.
                snap = msgpack.unpackb(bytes(self.snap_buf), raw=False)
                self.data = snap["data"]
                self.applied = ev.index
                self.restored_from = ev.index
                self.since_snapshot = 0
                self.snap_buf = bytearray()
            return
        assert ev.index == self.applied + 1, f"stream gap: {ev.index} after {self.applied}"
        self.applied = ev.index
        if ev.type == "data":
            c = msgpack.unpackb(ev.data, raw=False)
            if c["op"] == "set":
                self.data[c["k"]] = c["v"]
            elif c["op"] == "del":
                self.data.pop(c["k"], None)
        self.since_snapshot += 1
        if self.snapshot_every and self.since_snapshot >= self.snapshot_every:
            self.save_snapshot()

    def catch_up(self, index):
        """Applies the stream through `index`."""
        while self.applied < index:
            self._apply(next(self.stream))

    def save_snapshot(self):
        blob = msgpack.packb({"data": self.data}, use_bin_type=True)
        self.cmd.snapshot(self.applied, blob)
        self.since_snapshot = 0

    # ---- the application's API ------------------------------------------------------------

    def set(self, k, v):
        p = self.cmd.propose(msgpack.packb({"op": "set", "k": k, "v": v}, use_bin_type=True))
        self.catch_up(p.index)  # read-your-writes for this replica
        return p.index

    def delete(self, k):
        p = self.cmd.propose(msgpack.packb({"op": "del", "k": k}, use_bin_type=True))
        self.catch_up(p.index)
        return p.index

    def get(self, k):
        """Linearizable: reflects every write acknowledged before the call began."""
        self.catch_up(self.cmd.read_index())
        return self.data.get(k)

    def dump(self):
        self.catch_up(self.cmd.read_index())
        return dict(self.data)


def main():
    ap = argparse.ArgumentParser(description="replicated key-value store on raftd")
    ap.add_argument("--socket", default=None)
    ap.add_argument("--snapshot-every", type=int, default=100)
    ap.add_argument("command", choices=["set", "get", "del", "dump", "repl"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    try:
        kv = KV(a.socket, a.snapshot_every)
    except RaftdError as e:
        print(f"kv: {e}", file=sys.stderr)
        return 3

    def run(cmd, args):
        if cmd == "set":
            return str(kv.set(args[0], args[1]))
        if cmd == "del":
            return str(kv.delete(args[0]))
        if cmd == "get":
            v = kv.get(args[0])
            return "(nil)" if v is None else v
        if cmd == "dump":
            return json.dumps(kv.dump(), sort_keys=True)
        if cmd == "status":
            return json.dumps({"applied": kv.applied, "restored_from": kv.restored_from,
                               "keys": len(kv.data)})
        raise ValueError(f"unknown command {cmd}")

    try:
        if a.command != "repl":
            print(run(a.command, a.args))
            return 0
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            try:
                print(run(parts[0], parts[1:]), flush=True)
            except RaftdError as e:
                print(f"error {e.code} {e.message}", flush=True)
        return 0
    except RaftdError as e:
        print(f"kv: {e}", file=sys.stderr)
        return 1
    finally:
        kv.close()


if __name__ == "__main__":
    sys.exit(main())
