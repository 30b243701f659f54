"""Running out of disk: which errors mean that the storage is full, and how much space is left.

A full disk shows up in three places: the spool (waitress writing a request body,
app/server/spool.py), the blob store (an upload's bytes), and the database (SQLite's "database or
disk is full", PostgreSQL's `disk_full`). Each becomes the same answer, 507 STORAGE_FULL
(app/edge/error_responses.py), rather than a 500 or a dropped connection; and `/readyz` fails while the free
space is below `BERTH_MIN_FREE_BYTES`, so a load balancer sends pushes elsewhere before a disk
fills. Nothing here is remembered: when space returns, the next request simply succeeds.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full
SQLITE_FULL = 13  # SQLite's primary result code, as either driver reports it (sqlite_errorcode)


def is_storage_full(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from: peewee wraps the driver's error) means that
    a disk ran out of space."""
    for _ in range(8):  # a chain is short; a cycle must not loop forever
        if error is None:
            return False
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        # Whichever driver peewee runs SQLite with (pysqlite3's or the standard library's sqlite3:
        # app/db/setup.py), its errors carry SQLite's result code.
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return True
        if (
            getattr(error, "pgcode", None) == POSTGRES_DISK_FULL
            or getattr(error, "sqlstate", None) == POSTGRES_DISK_FULL
        ):
            return True
        if "database or disk is full" in str(error):  # SQLite's message, however it was wrapped
            return True
        error = error.__cause__ or error.__context__
    return False


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
    nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class FreeSpace:
    """The readiness check on free space: each of `paths`' filesystems must keep `minimum`
    bytes free (0: no check)."""

    def __init__(self, paths: list[Path], minimum: int) -> None:
        self.paths = list(dict.fromkeys(Path(p).absolute() for p in paths))
        self.minimum = minimum

    def shortfall(self) -> str | None:
        """Why there is too little space, or None when there is enough."""
        if self.minimum <= 0:
            return None
        for path in self.paths:
            try:
                free = free_bytes(path)
            except OSError as e:
                return f"cannot measure free space at {path}: {e.strerror or e}"
            if free < self.minimum:
                return f"{free} bytes free at {path}, below BERTH_MIN_FREE_BYTES ({self.minimum})"
        return None


def watched_paths(data_dir: Path, storage_url: str) -> list[Path]:
    """The local directories whose filesystems fill as Berth writes: the data directory
    (SQLite, keys, caches) and a filesystem blob store's root (blobs, uploads, the spool)."""
    paths = [Path(data_dir)]
    scheme, _, rest = storage_url.partition("://")
    if scheme.lower() == "file" and rest:
        paths.append(Path(rest))
    return paths
