#!/usr/bin/python3
"""A replicated key-value store on raftd: the example of how an application uses it.

The application keeps its state (a dict) itself. raftd only orders and stores commands;
raftd_client.apply.ApplyLoop runs the loop every application needs:

  - writes are proposed as entries: msgpack {"app": "kv", "op": "set"|"del", "k", "v"}.
    The "app" tag matters because one cluster is one log: entries written by anyone else
    (`raftctl propose hello`, another application) are skipped with a warning;
  - every replica applies the commit stream, in index order, to its dict;
  - a linearizable get asks raftd for a read index and waits until the loop has applied
    the stream through it (docs/protocol.md 6.5);
  - every N applied entries the replica saves its dict as a snapshot through the applied
    index, so raftd may compact its log;
  - on (re)start the replica subscribes from index 1: raftd sends the latest snapshot
    first (when the log was compacted), then the entries after it.

Usage:
  kv.py [--socket PATH] [--snapshot-every N] set KEY VALUE
  kv.py [--socket PATH] get KEY
  kv.py [--socket PATH] del KEY
  kv.py [--socket PATH] dump                 # every key, linearizable
  kv.py [--socket PATH] repl                 # commands from stdin, one per line:
                                             #   set K V | del K | get K | dump | status
Each run starts from nothing and restores from raftd, which shows restore-on-restart.
"""
import argparse
import json
import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
_SRC = os.path.join(_HERE, "..", "..", "python")
if os.path.isdir(os.path.join(_SRC, "raftd_client")):
    sys.path.insert(0, _SRC)  # the source tree's client; an installed one otherwise
import msgpack  # noqa: E402
from raftd_client import RaftdError  # noqa: E402
from raftd_client.apply import ApplyLoop  # noqa: E402

TAG = "kv"
_MAX_WARNINGS = 5


def encode(op, k, v=None):
    c = {"app": TAG, "op": op, "k": k}
    if v is not None:
        c["v"] = v
    return msgpack.packb(c, use_bin_type=True)


def decode(data):
    """The kv command in `data`, or None when the entry is not one of ours."""
    try:
        c = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
    if (not isinstance(c, dict) or c.get("app") != TAG or c.get("op") not in ("set", "del")
            or not isinstance(c.get("k"), str)):
        return None
    return c


class KV:
    def __init__(self, socket_path=None, snapshot_every=100):
        self.data = {}
        self.skipped = 0
        self.loop = ApplyLoop(socket_path, self._apply, self._snapshot, self._restore,
                              snapshot_every_entries=snapshot_every or None, name="kv")
        self.loop.client  # connect now: a bad socket is reported before anything else
        self.loop.start()

    def close(self):
        self.loop.stop()

    # ---- the state machine (called by the apply loop, in index order) ---------------------

    def _apply(self, ev):
        c = decode(ev.data)
        if c is None:
            # Not a kv command: another writer shares this cluster's log. Deterministic: every
            # replica skips the same entries.
            self.skipped += 1
            if self.skipped <= _MAX_WARNINGS:
                print(f"kv: warning: skipping entry {ev.index}: not a kv command "
                      f"({ev.data[:20]!r})", file=sys.stderr)
            return
        if c["op"] == "set":
            self.data[c["k"]] = c.get("v")
        else:
            self.data.pop(c["k"], None)

    def _snapshot(self):
        return msgpack.packb({"app": TAG, "data": self.data}, use_bin_type=True)

    def _restore(self, blob):
        snap = msgpack.unpackb(blob, raw=False)
        if not isinstance(snap, dict) or snap.get("app", TAG) != TAG:
            raise ValueError("the node's snapshot was not written by kv")
        self.data = dict(snap["data"])

    # ---- the application's API ------------------------------------------------------------

    def set(self, k, v):
        return self.loop.propose(encode("set", k, v)).index  # applied here on return

    def delete(self, k):
        return self.loop.propose(encode("del", k)).index

    def get(self, k):
        """Linearizable: reflects every write acknowledged before the call began."""
        self.loop.linearizable_read()
        with self.loop.lock:
            return self.data.get(k)

    def dump(self):
        self.loop.linearizable_read()
        with self.loop.lock:
            return dict(self.data)

    def status(self):
        with self.loop.lock:
            return {"applied": self.loop.applied, "restored_from": self.loop.restored_from,
                    "keys": len(self.data), "skipped": self.skipped}


def main():
    ap = argparse.ArgumentParser(description="replicated key-value store on raftd")
    ap.add_argument("--socket", default=None, help="raftd socket (default $RAFTD_SOCKET, "
                                                   "else ./raftd.sock)")
    ap.add_argument("--snapshot-every", type=int, default=100,
                    help="save a snapshot every N applied entries (0: never)")
    ap.add_argument("command", choices=["set", "get", "del", "dump", "repl"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    need = {"set": 2, "get": 1, "del": 1, "dump": 0, "repl": 0}[a.command]
    if len(a.args) != need:
        ap.error(f"{a.command} takes {need} argument(s)")
    try:
        kv = KV(a.socket, a.snapshot_every)
    except RaftdError as e:
        print(f"kv: {e}", file=sys.stderr)
        return 3

    def run(cmd, args):
        if cmd == "set" and len(args) == 2:
            return str(kv.set(args[0], args[1]))
        if cmd == "del" and len(args) == 1:
            return str(kv.delete(args[0]))
        if cmd == "get" and len(args) == 1:
            v = kv.get(args[0])
            return "(nil)" if v is None else v
        if cmd == "dump" and not args:
            return json.dumps(kv.dump(), sort_keys=True)
        if cmd == "status" and not args:
            return json.dumps(kv.status())
        raise ValueError(f"bad command: {' '.join([cmd, *args])}")

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
            except ValueError as e:
                print(f"error BAD_COMMAND {e}", flush=True)
        return 0
    except RaftdError as e:
        print(f"kv: {e}", file=sys.stderr)
        return 1
    finally:
        kv.close()


if __name__ == "__main__":
    sys.exit(main())
