"""What the Python harnesses beside this file share: collecting failures, a free TCP port,
stopping and reaping raftd, and the final report with the tail of raftd's logs.

Run by python_harness.sh, which passes RAFTD and WORKDIR (sys.argv[1:3]).
"""
import os, signal, socket, subprocess, sys

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def terminate(proc, timeout=20):
    """SIGTERM, then raftd's exit status; None (and a failure) when it does not exit in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("raftd did not exit within %d s of SIGTERM" % timeout)
        return None


def reap(proc):
    """Kills raftd if it still runs (a check failed or raised) and waits for it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def finish(work, logs):
    """Exits 0, or 1 after printing the last 3000 characters of each of `logs` (in `work`)."""
    if failures:
        for name in logs:
            p = os.path.join(work, name)
            if os.path.exists(p):
                print("---- " + name)
                print(open(p).read()[-3000:])
    sys.exit(1 if failures else 0)
