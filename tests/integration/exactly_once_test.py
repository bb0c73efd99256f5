"""Exactly-once proposals across leader failures (docs/protocol.md, "Exactly-once proposals";
issue 19): a real 3-node cluster, many client sessions proposing and retrying every request
until it is answered, while the leader is killed (SIGKILL) and the next one stopped (SIGSTOP,
so proposals through it end INDETERMINATE and its uncommitted entries meet the retries on
the next leader). Then the whole commit stream is read back: no request applied twice, and
every request answered with the one index that holds it.

The load and the checker are tests/integration/exactly_once_main.cpp
(build/*/tests/exactly_once_load). EXACTLY_ONCE_NO_KEY=1 runs the same schedule with retries
that carry no session key, to see the duplicates the feature prevents (that run fails).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftd_cluster import Cluster  # noqa: E402

SESSIONS = int(os.environ.get("EXACTLY_ONCE_SESSIONS", "12"))
REQUESTS = int(os.environ.get("EXACTLY_ONCE_REQUESTS", "150"))


def commit_of(nodes):
    best = 0
    for n in nodes:
        st = n.try_status()
        if st:
            best = max(best, st["commit"])
    return best


def await_progress(c, nodes, at_least, load, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if commit_of(nodes) >= at_least:
            return
        if load.poll() is not None:
            return  # the load finished early: nothing more to wait for
        time.sleep(0.05)
    raise AssertionError(f"no progress to commit {at_least} ({what})")


def restart_after_snapshot(tool):
    """The session table survives a snapshot, compaction and a restart: retries of keys whose
    entries were compacted away are still answered with their first index (from the
    snapshot's session section), and subscribers see only the application's bytes."""
    extra = ["--wal-segment-size", "1MiB", "--log-keep-entries", "0"]
    with Cluster(1, name="eosnap", extra=extra) as c:
        c.start()
        n = c.nodes[1]
        c.leader()
        if subprocess.run([tool, "snap", "before", n.socket]).returncode != 0:
            print("FAIL: keyed proposals or the snapshot upload")
            return 1
        if n.stop() != 0:
            print("FAIL: raftd did not stop cleanly")
            return 1
        n.start()
        c.leader()
        if subprocess.run([tool, "snap", "after", n.socket]).returncode != 0:
            print("FAIL: the session table did not survive the snapshot and restart")
            return 1
    print("ok   exactly_once_restart_after_snapshot")
    return 0


def main():
    tool = os.path.abspath(os.path.join(os.environ.get("RAFTD_BUILD", "build/release"), "tests",
                                        "exactly_once_load"))
    if not os.access(tool, os.X_OK):
        print(f"{tool} is not built")
        return 1
    if os.environ.get("EXACTLY_ONCE_NO_KEY") != "1" and restart_after_snapshot(tool) != 0:
        return 1
    no_key = os.environ.get("EXACTLY_ONCE_NO_KEY") == "1"
    out = tempfile.mktemp(prefix="exactly-once-", suffix=".txt")
    with Cluster(3, name="eotest") as c:
        c.start()
        nodes = list(c.nodes.values())
        first = c.leader()
        socks = ",".join(n.socket for n in nodes)
        args = [tool, "load", out, socks, str(SESSIONS), str(REQUESTS)]
        if no_key:
            args.append("--no-key")
        load = subprocess.Popen(args)
        total = SESSIONS * REQUESTS
        try:
            # SIGKILL the leader a quarter of the way in.
            await_progress(c, nodes, total // 4, load, "before the kill")
            first.kill(signal.SIGKILL)
            survivors = [n for n in nodes if n.id != first.id]
            second = c.leader(among=survivors)
            print(f"killed leader {first.id}; node {second.id} leads", flush=True)
            # Stop the next leader half way: its proposals in flight end INDETERMINATE and
            # its replicated, uncommitted entries meet their retries on the next leader. The
            # killed node comes back meanwhile so the two others can elect.
            await_progress(c, survivors, total // 2, load, "before the stop")
            second.proc.send_signal(signal.SIGSTOP)
            first.start(wait=False)
            third = c.leader(among=[n for n in nodes if n.id != second.id], timeout=60)
            print(f"stopped leader {second.id}; node {third.id} leads", flush=True)
            await_progress(c, [n for n in nodes if n.id != second.id], commit_of(nodes) + 50,
                           load, "after the stop")
            second.proc.send_signal(signal.SIGCONT)
            rc = load.wait(timeout=300)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
            for n in nodes:
                if n.running():
                    n.proc.send_signal(signal.SIGCONT)
        leader = c.leader(timeout=60)
        check = subprocess.run([tool, "check", out, leader.socket])
        os.unlink(out)
        if no_key:
            print("no-key run: the check above is expected to find duplicates")
            return 0 if check.returncode == 1 else 1
        if rc != 0:
            print(f"FAIL: the load ended with status {rc}")
            return 1
        if check.returncode != 0:
            print(f"FAIL: the commit stream check ended with status {check.returncode}")
            return 1
    print("ok   exactly_once_leader_failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
