"""The filesystem blob store (the embedded default)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from app.filelock import flock_until
from app.storage.base import BlobStore, LockTimeout

CHUNK = 1024 * 1024
_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_KEY = re.compile(r"^[0-9]+/[a-z0-9]+/[0-9a-f]{2}/[0-9a-f]+\Z")
_KEY_PREFIX = re.compile(r"^[0-9a-z/]*\Z")


_libc = ctypes.CDLL(None, use_errno=True)
_sync_file_range: Any
try:
    _sync_file_range = _libc.sync_file_range
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
except AttributeError:  # not Linux
    _sync_file_range = None
SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a file's bytes [offset, offset + length) to disk, without
    waiting for them (Linux; elsewhere nothing): a later fsync then finds them mostly written
    instead of all dirty in memory."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


class _WritebackFile(io.FileIO):
    """An upload opened for appending. On close it asks the kernel to start writing what was
    appended to disk (sync_file_range, without waiting), so the fsync that must come before a
    blob is acknowledged finds most of a chunked upload on disk already instead of all of it
    dirty in memory."""

    written_from = 0

    def close(self) -> None:
        if not self.closed and _sync_file_range is not None:
            end = self.tell()
            start_writeback(self.fileno(), self.written_from, end - self.written_from)
        super().close()


class FilesystemStore(BlobStore):
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.blobs = self.root / "blobs"
        self.uploads = self.root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    # Paths are built only from validated ids and keys: nothing outside the root is reachable.
    def _upload_path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"bad upload id {upload_id!r}")
        return self.uploads / upload_id

    def _blob_path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"bad blob key {key!r}")
        return self.blobs / key

    def create_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).touch(exist_ok=False)

    def open_upload_for_append(self, upload_id: str, offset: int) -> io.BufferedRandom:
        raw = _WritebackFile(self._upload_path(upload_id), "r+b")
        raw.written_from = offset
        f = io.BufferedRandom(raw)  # whole writes (a raw write may be short)
        f.truncate(offset)
        f.seek(offset)
        return f

    supports_append_file = True

    def append_file(self, upload_id: str, offset: int, source: str, length: int) -> None:
        # copy_file_range copies inside the kernel (no read into and write out of Python), and
        # leaves the GIL free for the thread hashing the same bytes meanwhile.
        with open(source, "rb", buffering=0) as src, self.open_upload_for_append(upload_id, offset) as f:
            f.flush()
            raw = f.raw
            done = 0
            while done < length:
                try:
                    n = os.copy_file_range(src.fileno(), raw.fileno(), length - done, done, offset + done)
                except OSError:  # a kernel or filesystem without it: copy through a buffer
                    n = os.pwrite(raw.fileno(), os.pread(src.fileno(), min(CHUNK, length - done), done), offset + done)
                if n == 0:
                    raise OSError(f"{source} is shorter than {length} bytes")
                done += n
            raw.seek(offset + length)  # where the writeback on close reaches

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    def adopt_upload(self, upload_id: str, source: str) -> bool:
        target = self._upload_path(upload_id)
        staging = target.with_name(target.name + ".adopt")
        try:
            os.link(source, staging)
        except OSError:  # another filesystem, or links unsupported: copy instead
            return False
        os.replace(staging, target)
        return True

    def read_upload(self, upload_id: str, length: int, start: int = 0) -> Iterator[bytes]:
        with open(self._upload_path(upload_id), "rb") as f:
            f.seek(start)
            remaining = length - start
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    raise OSError(f"upload {upload_id} is shorter than {length} bytes")
                remaining -= len(chunk)
                yield chunk

    def discard_past(self, upload_id: str, size: int) -> None:
        try:
            os.truncate(self._upload_path(upload_id), size)
        except FileNotFoundError:
            pass

    def delete_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)

    @contextlib.contextmanager
    def upload_lock(self, upload_id: str, timeout: float | None = None) -> Iterator[None]:
        # A lock file beside the upload (the upload itself is replaced when a spooled body is
        # adopted, and a lock on a replaced inode excludes no one). Removed with the upload.
        fd = os.open(self._upload_path(upload_id).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if timeout is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            elif not flock_until(fd, time.monotonic() + timeout):
                raise LockTimeout(f"the upload's lock was held past {timeout:g} s")
            yield
        finally:
            os.close(fd)  # releases the lock

    def prepare_commit(self, upload_id: str, size: int) -> None:
        with open(self._upload_path(upload_id), "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())

    def commit_upload(self, upload_id: str, key: str, size: int) -> None:
        source = self._upload_path(upload_id)
        target = self._blob_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())
        # rename is atomic: a reader sees the whole blob or none. Two commits of the same
        # digest write identical bytes, so the later rename replacing the earlier is harmless.
        os.replace(source, target)
        _fsync_dir(target.parent)
        source.with_suffix(".lock").unlink(missing_ok=True)

    def blob_size(self, key: str) -> int | None:
        try:
            return self._blob_path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, key: str) -> BinaryIO:
        return open(self._blob_path(key), "rb")

    def delete_blob(self, key: str) -> None:
        self._blob_path(key).unlink(missing_ok=True)

    def list_blobs(self, prefix: str) -> Iterator[tuple[str, int]]:
        if not _KEY_PREFIX.fullmatch(prefix) or "//" in prefix or prefix.startswith("/"):
            raise ValueError(f"bad key prefix {prefix!r}")
        # Walk only the deepest directory the prefix names whole, then filter on the rest.
        top = self.blobs / prefix.rsplit("/", 1)[0] if "/" in prefix else self.blobs
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            base = Path(dirpath).relative_to(self.blobs).as_posix()
            for name in sorted(filenames):
                key = name if base == "." else f"{base}/{name}"
                if not key.startswith(prefix) or not _KEY.fullmatch(key):
                    continue
                try:
                    yield key, os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:  # deleted while listing
                    continue

    def healthy(self) -> bool:
        return os.access(self.blobs, os.W_OK) and os.access(self.uploads, os.W_OK)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
