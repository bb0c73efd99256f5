"""Plays systemd's side of sd_notify(3) for raftd, as raftd.service (Type=notify,
NotifyAccess=main, WatchdogSec=) would: binds the NOTIFY_SOCKET datagram socket, starts
raftd with WATCHDOG_USEC, and checks READY=1 with a STATUS= line, periodic WATCHDOG=1 from
raftd's own pid, and STOPPING=1 then exit status 0 on SIGTERM. A second run without
WATCHDOG_USEC must send no WATCHDOG=1.

usage: notify_harness.py RAFTD WORKDIR
"""
import os, signal, socket, struct, subprocess, sys, time

from harness import fail, finish, free_port, reap

raftd, work = sys.argv[1], sys.argv[2]


def start(tag, env_extra):
    path = os.path.join(work, tag + ".notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    # SO_PASSCRED: each datagram carries its sender's pid, which systemd checks for
    # NotifyAccess=main.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    env = dict(os.environ, NOTIFY_SOCKET=path, **env_extra)
    env.pop("LISTEN_FDS", None)
    log = open(os.path.join(work, tag + ".log"), "w")
    proc = subprocess.Popen(
        [raftd, "--data-dir", os.path.join(work, tag + "-data"),
         "--socket", os.path.join(work, tag + ".sock"),
         "--listen", "127.0.0.1:%d" % free_port(), "--log-format", "plain"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, sock


def receive(sock, deadline):
    """Next (pid, {key: value}) before the deadline, or None."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    sock.settimeout(left)
    try:
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        return None
    pid = 0
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
    return pid, fields


def stop(proc, sock, expect_stopping):
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    stopping = False
    while not stopping:
        got = receive(sock, deadline)
        if got is None:
            break
        stopping = got[1].get("STOPPING") == "1"
    if expect_stopping and not stopping:
        fail("no STOPPING=1 after SIGTERM")
    try:
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail("raftd did not exit within 20 s of SIGTERM")
        return
    if rc != 0:
        fail("raftd exited %d after SIGTERM" % rc)


# ---- with a watchdog -------------------------------------------------------------------
WATCHDOG_USEC = 400000  # raftd should ping every 200 ms
proc, sock = start("wd", {"WATCHDOG_USEC": str(WATCHDOG_USEC)})
try:
    deadline = time.monotonic() + 30
    ready = None
    early_watchdogs = 0
    while ready is None:
        got = receive(sock, deadline)
        if got is None:
            break
        pid, fields = got
        if pid != proc.pid:
            fail("a notification came from pid %d, not raftd's %d" % (pid, proc.pid))
        if fields.get("READY") == "1":
            ready = fields
        elif fields.get("WATCHDOG") == "1":
            early_watchdogs += 1
    if ready is None:
        fail("no READY=1 within 30 s")
    else:
        print("READY=1 with STATUS=%r" % ready.get("STATUS"))
        if not ready.get("STATUS"):
            fail("READY=1 came without a STATUS= line")
        # Count watchdog pings over 8 intervals of WATCHDOG_USEC/2; expect at least half of
        # the 8 even on a loaded machine, and every one from raftd's pid.
        window = 8 * WATCHDOG_USEC / 2 / 1e6
        end = time.monotonic() + window
        pings = 0
        while True:
            got = receive(sock, end)
            if got is None:
                break
            pid, fields = got
            if fields.get("WATCHDOG") == "1":
                pings += 1
                if pid != proc.pid:
                    fail("WATCHDOG=1 from pid %d, not raftd's %d" % (pid, proc.pid))
        print("%d WATCHDOG=1 in %.1f s (interval %d us)" % (pings, window, WATCHDOG_USEC))
        if pings < 4:
            fail("only %d WATCHDOG=1 in %.1f s with WATCHDOG_USEC=%d" % (pings, window, WATCHDOG_USEC))
    stop(proc, sock, expect_stopping=True)
finally:
    reap(proc)
    sock.close()

# ---- without a watchdog: READY but never WATCHDOG ----------------------------------------
proc, sock = start("nowd", {})
try:
    deadline = time.monotonic() + 30
    ready = False
    while not ready:
        got = receive(sock, deadline)
        if got is None:
            fail("no READY=1 within 30 s (no watchdog)")
            break
        if got[1].get("WATCHDOG") == "1":
            fail("WATCHDOG=1 sent although WATCHDOG_USEC is unset")
        ready = got[1].get("READY") == "1"
    end = time.monotonic() + 1.0
    while True:
        got = receive(sock, end)
        if got is None:
            break
        if got[1].get("WATCHDOG") == "1":
            fail("WATCHDOG=1 sent although WATCHDOG_USEC is unset")
            break
    stop(proc, sock, expect_stopping=True)
finally:
    reap(proc)
    sock.close()

finish(work, ["wd.log", "nowd.log"])
