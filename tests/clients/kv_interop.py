"""kv-go and kv.py on one real 3-node cluster (tests/scripts/clients_kv_go_interop.sh): a
value written by one is read by the other, on other nodes, across snapshots each of them
uploaded and the other restores from after compaction; and one long-running kv-go (its
apply loop, raftd.ApplyLoop) keeps serving across a SIGKILL and restart of its node."""
import json
import os
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from raftd_cluster import Cluster  # noqa: E402
from raftd_client import Client  # noqa: E402
import msgpack  # noqa: E402

KV_PY = ["/usr/bin/python3", os.path.join(ROOT, "clients", "examples", "kv", "kv.py")]
KV_GO = [os.path.join(ROOT, "build", "release", "bin", "kv-go")]


def kv(tool, node, *cmds, every=5):
    p = subprocess.run(tool + ["--socket", node.socket, "--snapshot-every", str(every), "repl"],
                       input="\n".join(cmds) + "\n", capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{tool[-1]} exit {p.returncode}: {p.stderr}")
    return p.stdout.splitlines()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(3, extra=extra) as c:
        c.start()
        leader = c.leader()
        f1, f2 = [n for n in c.running() if n is not leader]
        big = "v" * 30000  # large values so snapshots compact whole segments
        out = kv(KV_PY, f1, *[f"set py{i} {big}{i}" for i in range(40)], "set shared from-python")
        check(not any(x.startswith("error") for x in out), out)
        out = kv(KV_GO, f2, "get shared", "get py7", *[f"set go{i} {big}{i}" for i in range(40)],
                 "set shared from-go", "del py3", "status")
        check(out[0] == "from-python" and out[1] == f"{big}7", out[:2])
        st = json.loads(out[-1])
        check(st["keys"] == 80, st)  # 41 + 40 new, py3 deleted
        out = kv(KV_PY, leader, "get shared", "get go39", "get py3", "status")
        check(out[:3] == ["from-go", f"{big}39", "(nil)"], out[:3])
        # Entries that are not kv's (untagged, or not msgpack) are skipped by both alike.
        with Client(leader.socket) as cl:
            cl.propose(msgpack.packb({"op": "set", "k": "untagged", "v": "x"}, use_bin_type=True))
            cl.propose(b"hello")
        py_dump = kv(KV_PY, f1, "dump")[0]
        go_dump = kv(KV_GO, f1, "dump")[0]
        check(py_dump == go_dump, "kv.py and kv-go dump the same state")
        check(len(json.loads(go_dump)) == 80 and "untagged" not in go_dump, "80 keys, kv's own")
        sts = [n.try_status() for n in c.running()]
        check(all(s["snapshot_index"] > 0 for s in sts), f"snapshots uploaded: {sts}")
        # A fresh kv-go restores from a snapshot when the log was compacted.
        st = json.loads(kv(KV_GO, leader, "dump", "status", every=0)[1])
        if leader.try_status()["first_index"] > 1:
            check(st["restored_from"] > 0, f"kv-go restored from the snapshot: {st}")
        survive_restart(c, f2)
        print("kv interop: ok")


def survive_restart(c, node):
    """A kv-go repl stays up while its node is SIGKILLed and restarted: its apply loop
    resubscribes, its command connection is redialed, and it reads what kv.py wrote."""
    errpath = os.path.join(c.root, "kv-go.stderr")
    errf = open(errpath, "w")
    p = subprocess.Popen(KV_GO + ["--socket", node.socket, "--snapshot-every", "5", "repl"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                         text=True, bufsize=1)

    def ask(line, timeout=90):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        # kv-go gives each command 60 s; past that it hangs: dump its goroutines and fail.
        t = threading.Timer(timeout, lambda: p.send_signal(signal.SIGQUIT))
        t.start()
        out = p.stdout.readline().rstrip("\n")
        t.cancel()
        if out == "" and p.poll() is not None:
            with open(errpath) as f:
                raise AssertionError(f"kv-go exited during {line!r}: {f.read()[-6000:]}")
        return out

    try:
        check(ask("set live1 one").isdigit(), "a write before the restart")
        node.kill()
        node.start()
        # A write sent on the old connection fails (never sent, or INDETERMINATE); the
        # next one goes on a new connection. Writes here are idempotent sets: repeat.
        for _ in range(50):
            out = ask("set live2 two")
            if out.isdigit():
                break
            check(out.startswith("error"), out)
            c.await_(lambda: (node.try_status() or {}).get("leader", 0) != 0, "a leader", 20)
        check(out.isdigit(), f"a write after the restart: {out}")
        others = [n for n in c.running() if n is not node]
        kv(KV_PY, others[0], "set from-python-after yes")
        check(ask("get live1") == "one" and ask("get live2") == "two", "reads after the restart")
        check(ask("get from-python-after") == "yes", "reads what kv.py wrote meanwhile")
    finally:
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        errf.close()
    check(p.returncode == 0, f"kv-go exit {p.returncode}")


if __name__ == "__main__":
    main()
