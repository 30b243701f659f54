"""Per-process spool directories, and the sweep that removes those of dead processes.

waitress spools large request bodies into files (app/server/spool.py) that a live process unlinks
when the request ends; a process that is killed (kill -9, the OOM killer) leaves them behind,
and a day of such leftovers was hundreds of MiB. So each server process spools into a directory
of its own under the spool root and holds an exclusive `flock` on the directory's `lock` file for
as long as it lives. The kernel releases the lock when the process dies, however it dies. Any
process sharing the root (a `--workers` sibling, a replica on the same volume, the next start)
tells a dead process's directory by taking its lock, and removes it while holding it; a live
process's lock is never free, so nothing it is receiving is ever touched. Process ids play no
part: they are reused, and mean nothing across machines.

A directory is made under a staging name (`.new-*`), locked, and only then renamed to its
`proc-*` name (the lock is on the file, so it survives the rename): a sweep never sees a
`proc-*` directory whose lock is free while its owner lives. A staging directory whose owner
died before the rename is removed once it is older than a minute.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from app.services.periodic import Periodic

log = logging.getLogger("berth.spool")

LOCK = "lock"
PREFIX = "proc-"
STAGING = ".new-"
STAGING_GRACE = 60  # seconds a staging directory may take to be locked and renamed
LEGACY_STALE_AFTER = 24 * 3600  # loose `body-*` files of versions before per-process directories


class ProcessSpool:
    """This process's spool directory, locked for as long as it is open."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def claim(cls, root: Path) -> ProcessSpool:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=root))  # mode 0700
        fd = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = root / f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            os.rename(staging, path)
        except BaseException:
            os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(path.resolve(), fd)

    def release(self) -> None:
        """Remove the directory (bodies still in it are unlinked; open ones stay readable) and
        drop the lock."""
        if self._lock_fd < 0:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = -1


def sweep(root: Path, keep: Path | None = None) -> int:
    """Remove the spool directories under `root` whose process is gone (their lock is free),
    and older leftovers; never `keep` (this process's own). Returns how many went."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
                if keep is None or path.resolve() != keep:
                    removed += _remove_if_dead(path)
            elif entry.name.startswith(STAGING) and entry.is_dir(follow_symlinks=False):
                if now - entry.stat(follow_symlinks=False).st_mtime > STAGING_GRACE:
                    removed += _remove_if_dead(path)
            elif entry.name.startswith("body-") and entry.is_file(follow_symlinks=False):
                # An older version's body, straight in the root: it may still be receiving.
                if now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_STALE_AFTER:
                    os.unlink(path)
                    removed += 1
        except FileNotFoundError:
            continue  # removed by another sweep meanwhile
    return removed


def _remove_if_dead(directory: Path) -> int:
    try:
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # A `proc-*` directory is locked before it gets its name: without a lock file it is
        # one another sweep was removing when it stopped (a staging one is past its grace).
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
            return 1
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # its process lives
        size = _size_of(directory)
        shutil.rmtree(directory, ignore_errors=True)
        log.info(
            "removed the spool directory %s of a process that is gone (%d bytes)",
            directory.name,
            size,
            extra={"spool_dir": directory.name, "bytes": size},
        )
        return 1
    finally:
        os.close(fd)


def _size_of(directory: Path) -> int:
    size = 0
    for entry in os.scandir(directory):
        try:
            size += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            pass
    return size


class SpoolSweeper(Periodic):
    """Runs `sweep` every `interval` in a background thread of `berth serve`."""

    thread_name = "spool-sweeper"

    def __init__(self, root: Path, keep: Path | None, interval: float) -> None:
        super().__init__(dt.timedelta(seconds=interval))
        self.root = root
        self.keep = keep

    def run_once(self) -> int:
        return sweep(self.root, self.keep)
