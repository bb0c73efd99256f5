"""The clock fault of the nemesis suite: one node's clocks jump or run at another rate,
through libfaketime (LD_PRELOAD). See docs/testing.md.

Every node of a run with the clock fault runs under libfaketimeMT with
FAKETIME_TIMESTAMP_FILE naming a file of its own and FAKETIME_NO_CACHE=1, so the file is
read at every clock call and a change takes effect at once in the running process. The
file holds "+OFFSET" or "+OFFSET xRATE". libfaketime fakes CLOCK_REALTIME and
CLOCK_MONOTONIC alike (DONT_FAKE_MONOTONIC is not set), and raftd's timers run on libuv's
monotonic clock, so the fault reaches its election and heartbeat timers and its request
deadlines, not only its log timestamps.

With a rate R, libfaketime computes fake = start + OFFSET + R * (now - start), start being
the moment the library was loaded. Changing R alone would therefore jump the clock by
(R - 1) * (now - start); the offset written with it cancels that, so a rate change bends
the clock without a jump (up to the few milliseconds by which `started` misses the
library's own start), and the offset accumulated while it ran is kept afterwards.
"""
import os
import time

LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1")


def library():
    for p in LIBS:
        if os.path.exists(p):
            return p
    return None


def spec(offset, rate=1.0):
    """The timestamp-file line for an offset in seconds and a rate."""
    # The rate is always written: a line without one keeps the rate of the line before.
    return f"{offset:+.3f} x{rate:g}"


def rate_offset(acc, rate, started, at):
    """The offset that makes rate `rate`, switched on at time `at` in a process whose
    library started at `started`, continue the clock that had offset `acc` at rate 1."""
    return acc - (rate - 1.0) * (at - started)


class FakeClock:
    """One node's faked clock. `acc` is the offset the clock carries at rate 1."""

    def __init__(self, path):
        self.path = path
        self.acc = 0.0
        self.rate = 1.0
        self.started = time.time()
        self.switched = None
        self.write(spec(0.0))

    def env(self):
        return {"LD_PRELOAD": library(), "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1",
                # The shared memory is for faketime(1)'s children; a node running as
                # another uid than whoever created it could not open it.
                "FAKETIME_DISABLE_SHM": "1"}

    def on_start(self):
        """The node's process (and with it the library) starts now."""
        self.started = time.time()
        self.rate = 1.0
        self.write(spec(self.acc))

    def write(self, line):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)  # a reader sees the old line or the new, never half

    def jump(self, seconds):
        self.acc += seconds
        self.write(spec(self.acc))

    def set_rate(self, rate):
        now = time.time()
        self.rate, self.switched = rate, now
        self.write(spec(rate_offset(self.acc, rate, self.started, now), rate))

    def reset_rate(self):
        """Back to rate 1, keeping the time the faked clock gained or lost meanwhile."""
        if self.rate != 1.0:
            self.acc += (self.rate - 1.0) * (time.time() - self.switched)
            self.rate = 1.0
        self.write(spec(self.acc))
