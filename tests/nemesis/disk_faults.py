"""Disk faults of the nemesis suite: `corrupt` (one node's files damaged while it is down) and
`enospc` (one node's filesystem full). See docs/testing.md, "The faults".

corrupt: the node is killed, its data directory copied aside, one kind of damage applied
(below the commit, so a torn-tail cut can never be the right answer), and the node started.
raftd must refuse to start with `raftd: error:` naming its data dir (docs/operations.md,
"A damaged data directory"), exit non-zero, and never print its `recovered:` line (which it
prints before it talks to any peer). The harness then puts the pre-damage copy back (the
node's own state at the kill, not an old backup) and starts it again. A node that accepts
the damage is a violation.

enospc: a ballast file fills the node's filesystem (root fills the blocks reserved for root
too). raftd must either keep running (no write of its hit the full disk in time) or stop
with `write-ahead log: ... No space left on device; stopping` and status 1; it must never
continue after a failed write. At the heal the ballast is removed and a stopped node is
started again; the checkers then see whether anything acknowledged was lost.

Owns: the damage, the pre-damage copies and ballast files it creates, and the outcome
counts. Never touches another node's files or anything outside the node's data dir and disk.
"""
import os
import random
import re
import shutil
import subprocess
import time

KINDS = ("corrupt", "enospc")
DAMAGE = ("wal-flip-body", "wal-flip-header", "wal-zero-block", "wal-truncate",
          "wal-missing-segment", "meta-flip", "meta-missing")
OUTCOME_S = 20.0      # how long a restarted node may take to refuse or recover
SEG_HDR = 32
BLOCK = 4096
# Damage in the last segment stays this far below its last record: raftd records the commit
# in meta/ every 16 KiB of entries (docs/wal-format.md, 5.3), and a cut of the log's end
# above the recorded commit cannot be told from a torn tail. 64 KiB leaves room for the
# commit's own lag behind the entries.
TAIL_MARGIN = 64 << 10


def plan(rng, f):
    """Adds the seeded details of a disk fault to schedule entry f (no-op for other kinds)."""
    if f["kind"] == "corrupt":
        f["damage"] = rng.choice(DAMAGE)
        f["salt"] = rng.randrange(1 << 30)


def describe_extra(f):
    """The damage done and what raftd did about it, for the fault's progress line."""
    parts = [f.get("done", f["damage"])] if f["kind"] == "corrupt" else []
    parts += [f["outcome"]] if f.get("outcome") else []
    return f" ({'; '.join(parts)})" if parts else ""


# ---- damage ------------------------------------------------------------------------------

def _data_end(path):
    """Offset after the last non-zero byte (the end of the records of a preallocated segment)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        end = size
        while end > 0:
            start = max(0, end - (1 << 20))
            fh.seek(start)
            chunk = fh.read(end - start).rstrip(b"\0")
            if chunk:
                return start + len(chunk)
            end = start
    return 0


def _segments(data_dir):
    wal = os.path.join(data_dir, "wal")
    return [os.path.join(wal, n) for n in sorted(os.listdir(wal))
            if re.fullmatch(r"\d{20}\.log", n)]


def _flip(path, off, rng):
    with open(path, "r+b") as fh:
        fh.seek(off)
        b = fh.read(1)[0]
        fh.seek(off)
        fh.write(bytes([b ^ (1 << rng.randrange(8))]))


def _table_data_end(path):
    """Where a LevelDB table's data blocks end: the offset of its metaindex block, from the
    footer (the last 48 bytes: two block handles as varints, padding, magic). Past it are
    the metaindex block, which raftd's LevelDB (no filter policy) never reads, the index
    block and the footer's padding, where a flipped bit changes nothing or only what LevelDB
    checks at table open. None when the footer does not parse."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 48 or data[-8:] != bytes.fromhex("57fb808b247547db"):
        return None
    v, shift = 0, 0
    for b in data[-48:-8]:
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v if v > 0 else None
    return None


def _below_tail(segs):
    """(segment, usable end) pairs: a sealed segment whole, the last one up to TAIL_MARGIN
    before its last record, so damage there is below the commit raftd recorded and followed
    by later records (never a torn tail)."""
    out = []
    for i, s in enumerate(segs):
        end = _data_end(s)
        if i == len(segs) - 1:
            end -= TAIL_MARGIN
        if end > SEG_HDR + 64:
            out.append((s, end))
    return out


def damage(data_dir, kind, rng):
    """Applies `kind` (falling back to wal-flip-body where it does not apply to what is on
    disk) and returns a description, or None when there is nothing to damage yet."""
    segs = _segments(data_dir)
    meta = os.path.join(data_dir, "meta")
    mfiles = sorted(os.listdir(meta)) if os.path.isdir(meta) else []
    below = _below_tail(segs)
    short = lambda p: os.path.relpath(p, data_dir)  # noqa: E731
    if kind == "wal-flip-header" and segs:
        s = rng.choice(segs)
        off = rng.randrange(SEG_HDR)
        _flip(s, off, rng)
        return f"flipped a bit in the header of {short(s)} at {off}"
    if kind == "wal-zero-block" and below:
        s, end = rng.choice(below)
        blocks = end // BLOCK
        if blocks >= 1:
            off = rng.randrange(blocks) * BLOCK
            with open(s, "r+b") as fh:
                fh.seek(off)
                fh.write(b"\0" * BLOCK)
            return f"zeroed the 4 KiB block of {short(s)} at {off}"
    if kind == "wal-truncate" and segs:
        if len(segs) >= 2:
            s = rng.choice(segs[:-1])
            size = rng.randrange(SEG_HDR, os.path.getsize(s))
        elif below:
            s, end = below[-1]
            size = rng.randrange(SEG_HDR, end)
        else:
            s = None
        if s:
            os.truncate(s, size)
            return f"truncated {short(s)} to {size} bytes"
    if kind == "wal-missing-segment" and segs:
        if len(segs) >= 3:
            s = rng.choice(segs[1:-1])
        else:
            s = rng.choice(segs)
        os.unlink(s)
        where = ("the only segment" if len(segs) == 1 else "the first segment" if s == segs[0]
                 else "the last segment" if s == segs[-1] else "a middle segment")
        return f"deleted {short(s)} ({where} of {len(segs)})"
    if kind == "meta-flip":
        tables = [n for n in mfiles if n.endswith(".ldb")]
        if tables:
            p = os.path.join(meta, rng.choice(tables))
            end = _table_data_end(p)
            if end:
                off = rng.randrange(end)
                _flip(p, off, rng)
                return f"flipped a bit in a data block of {short(p)} at {off}"
        # No table yet: a byte inside the first record of LevelDB's log file when another
        # record follows it (a damaged final record may read as LevelDB's own torn write).
        for n in (n for n in mfiles if n.endswith(".log")):
            p = os.path.join(meta, n)
            with open(p, "rb") as fh:
                hdr = fh.read(7)
            if len(hdr) == 7:
                length = hdr[4] | hdr[5] << 8
                if 7 + length + 7 < os.path.getsize(p) and length > 0:
                    off = 7 + rng.randrange(length)
                    _flip(p, off, rng)
                    return f"flipped a bit in {short(p)} at {off}"
    if kind == "meta-missing":
        # Not CURRENT while no table exists: LevelDB then makes a new database that replays
        # every log file still there, which hold all of meta/, and loses nothing.
        tables = [n for n in mfiles if n.endswith(".ldb")]
        cands = [n for n in mfiles if n.startswith("MANIFEST-") or n.endswith(".log")] + tables
        cands += ["CURRENT"] if tables and "CURRENT" in mfiles else []
        if cands:
            p = os.path.join(meta, rng.choice(cands))
            os.unlink(p)
            return f"deleted {short(p)}"
    if below:
        s, end = rng.choice(below)
        off = rng.randrange(SEG_HDR, end)
        _flip(s, off, rng)
        instead = "" if kind == "wal-flip-body" else f" (instead of {kind})"
        return f"flipped a bit in a record of {short(s)} at {off}{instead}"
    return None


# ---- the faults ------------------------------------------------------------------------

class State:
    """Per run: outcome counts and violations, kept on the Run as run.disk_faults."""

    def __init__(self):
        self.counts = {"corrupt refused": 0, "corrupt skipped": 0, "enospc stopped": 0,
                       "enospc kept running": 0}
        self.violations = []
        self.pending = {}   # node id -> (kind, log offset, description, backup dir)


def state(run):
    if not hasattr(run, "disk_faults"):
        run.disk_faults = State()
    return run.disk_faults


def _log_since(node, offset):
    try:
        with open(node.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def inject(run, nodes, f):
    st = state(run)
    for n in nodes:
        if f["kind"] == "corrupt":
            _inject_corrupt(run, st, n, f)
        else:
            _inject_enospc(st, n)


def _inject_corrupt(run, st, n, f):
    n.kill()
    backup = os.path.join(run.work, f"n{n.id}.before-damage")
    shutil.rmtree(backup, ignore_errors=True)
    subprocess.run(["cp", "-a", n.data_dir, backup], check=True)
    rng = random.Random(f["salt"] * 7 + n.id)
    what = damage(n.data_dir, f["damage"], rng)
    f["done"] = what or "nothing to damage yet"
    offset = os.path.getsize(n.log_path) if os.path.exists(n.log_path) else 0
    st.pending[n.id] = ("corrupt", offset, what, backup)
    n.start()
    n.down = True       # may exit on its own: that is the expected outcome


def _inject_enospc(st, n):
    ballast = os.path.join(n.disk.mnt, "ballast")
    fd = os.open(ballast, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        off, chunk = 0, os.statvfs(n.disk.mnt).f_bfree * os.statvfs(n.disk.mnt).f_frsize
        while chunk >= BLOCK:
            try:
                os.posix_fallocate(fd, off, chunk)
                off += chunk
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    offset = os.path.getsize(n.log_path) if os.path.exists(n.log_path) else 0
    st.pending[n.id] = ("enospc", offset, f"{off >> 20} MiB ballast", ballast)
    n.down = True       # may stop on its own: that is one allowed outcome


def heal(run, f):
    st = state(run)
    for i in f["resolved"]:
        n = run.nodes[i]
        kind, offset, what, extra = st.pending.pop(n.id)
        if kind == "corrupt":
            f["outcome"] = _heal_corrupt(run, st, n, offset, what, extra)
        else:
            f["outcome"] = _heal_enospc(st, n, offset, extra)


def _heal_corrupt(run, st, n, offset, what, backup):
    deadline = time.monotonic() + OUTCOME_S
    while n.running() and "recovered:" not in _log_since(n, offset):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    text = _log_since(n, offset)
    outcome = "accepted"
    if what is None:
        st.counts["corrupt skipped"] += 1
        n.down = False
        outcome = "skipped"
    elif "recovered:" in text:
        st.violations.append(f"corrupt: node {n.id} started on damaged state ({what}): "
                             + next(ln for ln in text.splitlines() if "recovered:" in ln))
        n.down = False
    elif n.running():
        st.violations.append(f"corrupt: node {n.id} neither refused nor recovered within "
                             f"{OUTCOME_S:.0f}s ({what})")
        n.down = False
    else:
        rc = n.proc.returncode
        err = re.search(r"raftd: error: (data dir |recovering raft state from )"
                        + re.escape(n.data_dir) + r".*", text)
        if rc == 0 or not err:
            st.violations.append(f"corrupt: node {n.id} exited with status {rc} without the "
                                 f"documented error naming its data dir ({what}): "
                                 + " | ".join(text.strip().splitlines()[-2:]))
        else:
            st.counts["corrupt refused"] += 1
            outcome = "refused: " + _clip(err.group(0).replace(n.data_dir, "<dir>"))
        # Put back the node's own state at the kill (not an old backup) and start it again.
        # Synced first, as an operator's restore would be: a later power cut must not take
        # the copy's files back (the node synced its own writes, not ours).
        shutil.rmtree(n.data_dir)
        subprocess.run(["cp", "-a", backup, n.data_dir], check=True)
        subprocess.run(["sync", "-f", n.disk.mnt], check=True)
        n.start()
    shutil.rmtree(backup, ignore_errors=True)
    return outcome


def _heal_enospc(st, n, offset, ballast):
    os.unlink(ballast)
    if n.running():
        st.counts["enospc kept running"] += 1
        n.down = False
        return "kept running"
    text = _log_since(n, offset)
    rc = n.proc.returncode
    line = re.search(r"write-ahead log: .*No space left on device.*; stopping", text)
    if rc != 1 or not line:
        st.violations.append(f"enospc: node {n.id} exited with status {rc} without the "
                             "documented 'write-ahead log: ... No space left on device; "
                             "stopping' line: " + " | ".join(text.strip().splitlines()[-2:]))
    else:
        st.counts["enospc stopped"] += 1
    n.start()
    return "stopped: " + _clip(line.group(0)) if line else f"exited {rc}"


def _clip(text, n=200):
    return text if len(text) <= n else text[:n] + "..."


def results(run):
    st = state(run)
    return dict(st.counts), list(st.violations)
