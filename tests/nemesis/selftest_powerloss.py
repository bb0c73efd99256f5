#!/usr/bin/python3
"""Self-test of the power-loss model (tests/nemesis/disk.py): on a loop-mounted ext4 image,
a write that was fsynced survives the cut and a write that was not is lost, whether it
extended a synced file or created a new file (whose directory entry was not synced either).
If this fails, the nemesis power-loss fault does not lose unsynced writes here and its
results prove less than they claim. Exit 0 pass, 1 fail, 77 cannot run here."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import disk  # noqa: E402


def main():
    why = disk.available()
    if why:
        print(f"skipped: {why}")
        return 77
    work = tempfile.mkdtemp(prefix="nemesis-selftest-")
    d = disk.LoopDisk(work, "st", size_mb=32)
    failures = []
    try:
        with disk.WritebackHold():
            d.create()
            synced = os.path.join(d.mnt, "synced")
            fd = os.open(synced, os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"A" * 8192)
            os.fsync(fd)
            dfd = os.open(d.mnt, os.O_RDONLY)
            os.fsync(dfd)            # the new file's directory entry is durable
            os.close(dfd)
            os.write(fd, b"B" * 8192)  # appended, never synced
            os.close(fd)
            with open(os.path.join(d.mnt, "unsynced"), "wb") as f:
                f.write(b"C" * 8192)   # new file, never synced
            # Give any background writeback that would defeat the model a chance to run.
            time.sleep(float(os.environ.get("SELFTEST_WAIT", "6")))
            copy = d.cut()
            d.switch_to_copy(copy)
            try:
                with open(synced, "rb") as f:
                    got = f.read()
                if got != b"A" * 8192:
                    failures.append(f"synced file has {len(got)} bytes after the cut, want 8192")
            except FileNotFoundError:
                failures.append("the fsynced file is missing after the cut")
            if os.path.exists(os.path.join(d.mnt, "unsynced")):
                failures.append("a never-synced new file survived the cut")
    finally:
        d.destroy()
        os.rmdir(work)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("ok: fsynced data survived the cut; unsynced append and unsynced file were lost")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
