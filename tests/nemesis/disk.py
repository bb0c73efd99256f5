"""Per-node disks for the nemesis suite: an ext4 filesystem in an image file, loop-mounted,
and the power-loss cut (docs/testing.md, "power loss").

The cut keeps exactly what the filesystem had handed to the loop device when the image file
was copied: data and metadata that were fsynced, plus whatever the kernel wrote back on its
own. To make "on its own" as rare as possible a run holds background writeback back
(WritebackHold) and mounts with a long journal commit interval, so an unsynced write stays
in the page cache of the ext4 filesystem above the loop device and is not in the copy.
Owns: image files, loop mounts, the vm.dirty_* sysctls while held. Never touches a device
or mount it did not create.
"""
import os
import shutil
import subprocess

# Journal commit interval (seconds) for the mounts: the default 5 s would commit (and, in
# data=ordered mode, write the data of) unsynced appends every 5 s.
COMMIT_SECONDS = 3600
MOUNT_OPTS = f"loop,commit={COMMIT_SECONDS},data=ordered"


def run(*argv, check=True):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stdout.strip()}")
    return r


def available():
    """None when loop-mounted ext4 images can be used here, else why not."""
    if os.geteuid() != 0:
        return "not root (loop mounts need root)"
    for tool in ("mkfs.ext4", "losetup", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (make deps)"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control (loop devices unavailable)"
    return None


class WritebackHold:
    """Holds background writeback back while active: vm.dirty_expire_centisecs and
    vm.dirty_writeback_centisecs raised, the previous values restored on exit. Machine-wide:
    other processes' dirty pages also stay in memory longer (they are still written on fsync,
    on memory pressure and at the dirty_ratio limits).

    Several runs may overlap: the first one records the original values in STATE (with the
    pids holding), later ones join, and the last live holder to leave restores them, so the
    machine never keeps the held values after the last run."""
    KEYS = ("vm/dirty_expire_centisecs", "vm/dirty_writeback_centisecs")
    STATE = "/run/raftd-nemesis-writeback.json"

    def __init__(self, centisecs=360000):
        self.centisecs = centisecs

    def _locked(self, fn):
        import fcntl
        import json
        with open(self.STATE + ".lock", "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                with open(self.STATE) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                st = None
            if st is not None:
                st["pids"] = [p for p in st["pids"] if _alive(p)]
            st = fn(st)
            if st is None:
                try:
                    os.unlink(self.STATE)
                except FileNotFoundError:
                    pass
            else:
                with open(self.STATE, "w") as f:
                    json.dump(st, f)

    def __enter__(self):
        def enter(st):
            if st is None or not st["pids"]:
                orig = st["orig"] if st else {k: _read(k) for k in self.KEYS}
                st = {"orig": orig, "pids": []}
            st["pids"].append(os.getpid())
            for k in self.KEYS:
                _write(k, str(self.centisecs))
            return st
        self._locked(enter)
        return self

    def __exit__(self, *exc):
        def leave(st):
            if st is None:
                return None
            st["pids"] = [p for p in st["pids"] if p != os.getpid()]
            if st["pids"]:
                return st
            for k, v in st["orig"].items():
                _write(k, v)
            return None
        self._locked(leave)
        return False


def _read(key):
    with open("/proc/sys/" + key) as f:
        return f.read().strip()


def _write(key, value):
    with open("/proc/sys/" + key, "w") as f:
        f.write(value)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class LoopDisk:
    """One node's filesystem: `image` loop-mounted on `mnt`. generation counts power cuts
    (each cut moves the node onto a fresh copy of its image)."""

    def __init__(self, workdir, name, size_mb=256, owner=None):
        self.workdir = workdir
        self.name = name
        self.size_mb = size_mb
        self.owner = owner          # (uid, gid) to own the filesystem root, or None
        self.mnt = os.path.join(workdir, f"{name}.mnt")
        self.generation = 0
        self.image = self._image_path(0)
        self.mounted = False

    def _image_path(self, gen):
        return os.path.join(self.workdir, f"{self.name}.g{gen}.img")

    def create(self):
        os.makedirs(self.mnt, exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb << 20)
        run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.image)
        self.mount()
        if self.owner:
            os.chown(self.mnt, *self.owner)
        run("sync", "-f", self.mnt)  # the filesystem's root and owner are durable before use

    def mount(self):
        run("mount", "-t", "ext4", "-o", MOUNT_OPTS, self.image, self.mnt)
        self.mounted = True

    def unmount(self):
        if self.mounted:
            # A plain umount may fail briefly while a killed process's files close.
            for _ in range(50):
                if run("umount", self.mnt, check=False).returncode == 0:
                    break
                subprocess.run(["sleep", "0.1"])
            else:
                run("umount", "-l", self.mnt)
            self.mounted = False

    def cut(self):
        """The power cut, while every process using the disk is stopped (SIGSTOP): copies
        the image FILE (what reached the loop device), then the caller SIGKILLs them and
        calls switch_to_copy(). Returns the copy's path."""
        copy = self._image_path(self.generation + 1)
        run("cp", "--sparse=always", self.image, copy)
        return copy

    def switch_to_copy(self, copy):
        """After the processes died: unmount the old image (dropping its page cache, which
        is what the power loss loses), delete it and mount the copy fresh (ext4 replays its
        journal as after a crash)."""
        self.unmount()
        old = self.image
        self.generation += 1
        self.image = copy
        os.unlink(old)
        self.mount()

    def destroy(self):
        self.unmount()
        for g in range(self.generation + 2):
            p = self._image_path(g)
            if os.path.exists(p):
                os.unlink(p)
        try:
            os.rmdir(self.mnt)
        except OSError:
            pass
