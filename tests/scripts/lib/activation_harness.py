"""Socket activation as raftd.socket does it (sd_listen_fds(3)): the harness creates and
listens on the client socket, connects and sends a ping before raftd even runs, then starts
raftd with the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID set to raftd's own pid (through
`sh -c 'LISTEN_PID=$$ exec raftd ...'`). The early ping must be answered, a new connection
must work, and raftd must not create its configured socket path (it uses the one given).

usage: activation_harness.py RAFTD WORKDIR
"""
import os, socket, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "clients", "python"))
from raftd_client import encode_request, read_frame  # noqa: E402
from harness import fail, finish, free_port, reap, terminate  # noqa: E402

raftd, work = sys.argv[1], sys.argv[2]


def ping_frame(i):
    return encode_request("ping", i)


def read_reply(conn, timeout):
    conn.settimeout(timeout)
    body = read_frame(conn)
    if body is None:
        raise EOFError("connection closed")
    return body


def ok_reply(i):
    return b"\x82\xa2id" + bytes([i]) + b"\xa2ok\xc3"


port = free_port()

path = os.path.join(work, "activated.sock")
configured = os.path.join(work, "configured.sock")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(16)

# An application connecting before raftd runs: the kernel queues it on the listener.
early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
early.connect(path)
early.sendall(ping_frame(1))

# Handed over from a high descriptor: the shell then moves it to 3 (the listener's own
# number could already be 3, and `3<&3 3<&-` would close it).
lfd = 9  # dash accepts single-digit descriptors only
os.dup2(listener.fileno(), lfd)
cmd = ('LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --data-dir "$1" --socket "$2" --listen "$3" '
       '--log-format plain 3<&%d %d<&-' % (lfd, lfd))
log = open(os.path.join(work, "raftd.log"), "w")
env = dict(os.environ)
env.pop("NOTIFY_SOCKET", None)
proc = subprocess.Popen(["/bin/sh", "-c", cmd, raftd, os.path.join(work, "data"), configured,
                         "127.0.0.1:%d" % port], pass_fds=(lfd,), env=env,
                        stdout=log, stderr=subprocess.STDOUT)
listener.close()  # raftd holds the only copy now, as after systemd hands it over
os.close(lfd)
try:
    try:
        got = read_reply(early, 30)
        if got != ok_reply(1):
            fail("early ping answered with %r" % got)
        else:
            print("ping sent before raftd started was answered")
    except (socket.timeout, EOFError, OSError) as e:
        fail("no reply to the ping sent before raftd started: %s" % e)
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        late.connect(path)
        late.sendall(ping_frame(2))
        got = read_reply(late, 10)
        if got != ok_reply(2):
            fail("second connection's ping answered with %r" % got)
    except OSError as e:
        fail("second connection through the activated socket failed: %s" % e)
    if os.path.exists(configured):
        fail("raftd created its configured socket %s although it was handed one" % configured)
    rc = terminate(proc)
    if rc not in (0, None):
        fail("raftd exited %d after SIGTERM" % rc)
finally:
    reap(proc)
# ---- LISTEN_PID naming another process: the descriptors are not for raftd ----------------
# (sd_listen_fds(3): a child that inherited the variables must ignore them.) raftd must
# then create and serve its configured socket.
other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
other.bind(os.path.join(work, "not-for-raftd.sock"))
other.listen(4)
os.dup2(other.fileno(), lfd)
cmd2 = ('LISTEN_PID=1 LISTEN_FDS=1 exec "$0" --data-dir "$1" --socket "$2" --listen "$3" '
        '--log-format plain 3<&%d %d<&-' % (lfd, lfd))
log2 = open(os.path.join(work, "raftd2.log"), "w")
proc = subprocess.Popen(["/bin/sh", "-c", cmd2, raftd, os.path.join(work, "data2"), configured,
                         "127.0.0.1:%d" % port], pass_fds=(lfd,), env=env,
                        stdout=log2, stderr=subprocess.STDOUT)
os.close(lfd)
try:
    deadline = time.monotonic() + 30
    conn = None
    while conn is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(configured)
            conn = c
        except OSError:
            time.sleep(0.05)
    if conn is None:
        fail("with LISTEN_PID of another process raftd did not serve its configured socket")
    else:
        conn.sendall(ping_frame(3))
        try:
            if read_reply(conn, 10) != ok_reply(3):
                fail("ping on the configured socket got a wrong reply")
            else:
                print("LISTEN_PID of another process: raftd served its configured socket")
        except (socket.timeout, EOFError, OSError) as e:
            fail("no reply on the configured socket: %s" % e)
    terminate(proc)
finally:
    reap(proc)
    other.close()

finish(work, ["raftd2.log", "raftd.log"])
