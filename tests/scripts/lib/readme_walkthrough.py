"""The README's quick start and KV walkthrough, typed the way a newcomer types them (issue
16): the commands of the ```sh blocks under "## Quick start", in the README's order,
against the cluster daemon/demo/run.sh starts (what `make run` runs), in a scratch copy of
the tree whose demo configs use free ports. The prose step between the blocks (kill -9 the
leader; propose keeps working; start it again) is done here as the README describes it.

Checks each command's output; above all that `kv.py set color blue` after `raftctl propose
hello` works (it died with msgpack ExtraData) and `kv.py get color` answers blue.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import fail, finish, free_port  # noqa: E402

RAFTD, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(RAFTD)))


def readme_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [[ln.strip() for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            for b in blocks]


def make_tree():
    """WORK/tree: build/release and clients linked, daemon/demo copied with free ports."""
    tree = os.path.join(WORK, "tree")
    os.makedirs(os.path.join(tree, "daemon", "demo"))
    os.makedirs(os.path.join(tree, "build"))
    os.symlink(BUILD, os.path.join(tree, "build", "release"))
    os.symlink(os.path.join(ROOT, "clients"), os.path.join(tree, "clients"))
    demo = os.path.join(ROOT, "daemon", "demo")
    ports = {7100 + i: free_port() for i in (1, 2, 3)}
    for name in os.listdir(demo):
        s = open(os.path.join(demo, name)).read()
        for old, new in ports.items():
            s = s.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        dst = os.path.join(tree, "daemon", "demo", name)
        open(dst, "w").write(s)
        os.chmod(dst, os.stat(os.path.join(demo, name)).st_mode)
    return tree


def peer_pid(path):
    """The pid of the process serving the Unix socket `path` (SO_PEERCRED)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                     struct.calcsize("3i")))
        return pid
    finally:
        s.close()


def await_(pred, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")
    return None


class Shell:
    """Runs README lines with bash in the tree, keeping `export`ed variables."""

    def __init__(self, tree):
        self.tree = tree
        self.env = {k: v for k, v in os.environ.items() if k not in ("RAFTD_SOCKET",
                                                                    "RAFTD_BUILD")}

    def run(self, line, timeout=60):
        if line.startswith("export "):
            k, v = line[len("export "):].split("#")[0].strip().split("=", 1)
            self.env[k] = v
            return None
        return subprocess.run(["bash", "-c", line], cwd=self.tree, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def follow(self, line, want, timeout=30):
        """A command that runs until Ctrl-C (raftctl tail): its output until `want` shows."""
        p = subprocess.Popen(["bash", "-c", line], cwd=self.tree, env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        out = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ln = p.stdout.readline()
                if not ln:
                    break
                out.append(ln)
                if any(w in ln for w in want):
                    return "".join(out)
        finally:
            os.killpg(p.pid, signal.SIGINT)  # Ctrl-C
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        fail(f"{line!r}: {want} not shown; output {''.join(out)[-500:]!r}")
        return "".join(out)


def main():
    blocks = readme_commands()
    if len(blocks) < 2:
        fail(f"README quick start: expected two sh blocks, found {len(blocks)}")
        finish(WORK, [])
    quick, kv = blocks[0], blocks[1]
    tree = make_tree()
    log = open(os.path.join(WORK, "run.log"), "w")
    run = subprocess.Popen(["bash", "daemon/demo/run.sh"], cwd=tree, stdout=log,
                           stderr=subprocess.STDOUT, env={k: v for k, v in os.environ.items()
                                                          if k != "RAFTD_BUILD"})
    extra = None
    sh = Shell(tree)
    raftctl = os.path.join(tree, "build", "release", "bin", "raftctl")
    try:
        def status(sock):
            p = subprocess.run([raftctl, "--socket", sock, "status", "--json"], cwd=tree,
                               capture_output=True, text=True, timeout=10)
            return json.loads(p.stdout) if p.returncode == 0 else None

        socks = [os.path.join(tree, "run", f"node{i}.sock") for i in (1, 2, 3)]
        await_(lambda: all((status(s) or {}).get("leader") for s in socks),
               "the demo cluster to elect a leader")
        for line in quick:
            if " tail " in line:
                sh.follow(line, ("hello", "68656c6c6f"))
                print(f"ok: {line}")
                continue
            p = sh.run(line)
            if p is None:
                continue
            if p.returncode != 0:
                fail(f"{line!r}: exit {p.returncode}: {p.stderr[-500:]}")
                continue
            if line.endswith("status") or " status " in line:
                if "leader" not in p.stdout:
                    fail(f"{line!r}: no leader in {p.stdout!r}")
            elif " propose " in line:
                if not re.fullmatch(r"\d+ \d+\n", p.stdout):
                    fail(f"{line!r}: want 'INDEX TERM', got {p.stdout!r}")
            print(f"ok: {line}")
        # The prose: kill -9 the leader, proposals keep working through the survivors, then
        # the leader is started again and catches up.
        lead = status(socks[0])["leader"]
        victim = peer_pid(socks[lead - 1])
        os.kill(victim, signal.SIGKILL)
        survivor = socks[lead % 3]

        def propose_again():
            p = subprocess.run([raftctl, "--socket", survivor, "propose", "after-kill"],
                               capture_output=True, text=True, timeout=30)
            return p.returncode == 0 and re.fullmatch(r"\d+ \d+\n", p.stdout)
        await_(propose_again, "raftctl propose through the survivors")
        extra = subprocess.Popen([os.path.join(tree, "build", "release", "bin", "raftd"),
                                  "--config", f"daemon/demo/node{lead}.toml"], cwd=tree,
                                 stdout=log, stderr=subprocess.STDOUT)
        await_(lambda: (status(socks[lead - 1]) or {}).get("leader"),
               f"node {lead} back and following")
        print(f"ok: killed the leader (node {lead}), proposed through node "
              f"{lead % 3 + 1}, started node {lead} again")
        for line in kv:
            p = sh.run(line)
            if p is None:
                continue
            if p.returncode != 0 or "Traceback" in p.stderr:
                fail(f"{line!r}: exit {p.returncode}: {p.stderr[-800:]}")
                continue
            if " set " in line and not re.fullmatch(r"\d+\n", p.stdout):
                fail(f"{line!r}: want the entry's index, got {p.stdout!r}")
            if " get color" in line and p.stdout != "blue\n":
                fail(f"{line!r}: want blue, got {p.stdout!r}")
            if " set " in line and "skipping entry" not in p.stderr:
                fail(f"{line!r}: no warning about the foreign entries: {p.stderr!r}")
            print(f"ok: {line}")
    finally:
        if extra is not None:
            extra.send_signal(signal.SIGTERM)
            extra.wait(30)
        run.send_signal(signal.SIGINT)  # Ctrl-C in the `make run` terminal
        try:
            rc = run.wait(60)
            if rc != 0:
                fail(f"run.sh exited {rc} on Ctrl-C")
        except subprocess.TimeoutExpired:
            fail("run.sh did not stop on Ctrl-C")
            run.kill()
            run.wait()
        log.close()
    if "all nodes stopped" not in open(os.path.join(WORK, "run.log")).read():
        fail("run.sh did not report the nodes stopped")
    finish(WORK, ["run.log"])


main()
