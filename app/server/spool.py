"""Where waitress spools request bodies, how a spooled body becomes an upload without a copy,
and how an upload's body is hashed while it is still arriving.

waitress reads a whole request body before the application runs, spilling anything past
`inbuf_overflow` into a temporary file. By default that file is anonymous and elsewhere, so a
pushed layer was written twice: once by waitress, once more into the blob store. Spooling into a
named file on the blob store's own filesystem lets the upload take the file over with a hard
link instead (the bytes are still fsynced before the blob is acknowledged). Each process spools
into a directory of its own, locked while it lives, so a killed process's bodies are found and
removed by the others within minutes (app/server/spool_dirs.py). The application sees a spooled
body only through the seam in app/edge/spooled_body.py (a SpoolFile is its SpooledBodyFile).

Hashing while receiving. An upload's digest is SHA-256 over all of its bytes, and the
application only runs once waitress has the whole body: hashing it then put the hash after the
transfer, not beside it (a 1 GiB layer: ~0.7 s of hashing after the last byte arrived). So when
an upload's body (POST/PUT/PATCH under /v2/<name>/blobs/uploads/) starts spooling, a pool
thread hashes it as waitress writes it, starting from the upload's hash state at the offset the
chunk will land on: empty for a new upload, else this process's cached hash or the state saved
with the committed offset (app/services/uploads.py). That lookup happens before the request is
authorized, so its result is only ever used by the upload service, after authorization, inside
the upload's claim, and only when the upload is still at that offset: a mismatch, a slow start
or any failure leaves the service hashing the spooled file itself, as it did before.
"""

from __future__ import annotations

import collections
import errno
import io
import os
import queue
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waitress.buffers import TempfileBasedBuffer

from app.edge import spooled_body
from app.server import spool_dirs
from app.spec import content_range
from app.storage.capacity import FULL_ERRNOS
from app.storage.filesystem import start_writeback

StartHash = Callable[[str | None, int | None], "tuple[int, Any] | None"]  # (offset, a hashlib-like hasher)

_receiving = threading.local()  # the channel whose received() is running on this (loop) thread
_waitress_newfile = TempfileBasedBuffer.newfile

HASH_THREADS = 4  # bodies hashed at once per process; more wait, then catch up from the file
QUEUED_LIMIT = 8 * 1024 * 1024  # received bytes held for the hashing thread; past it, it reads the file
READ = 1024 * 1024
# The hashing thread asks the kernel to start writing each this many hashed bytes to disk: a
# blob is fsynced before it is acknowledged, and a whole large body left dirty in memory until
# then made that fsync most of a monolithic push's time.
WRITEBACK_EVERY = 8 * 1024 * 1024
START_WAIT = 0.05  # seconds a finished body waits for a hashing thread to take it up
STALL = 60.0  # seconds without new bytes before a hashing thread gives a body up

_UPLOAD_PATH = re.compile(
    r"^/v2/.+/blobs/uploads/(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?/?\Z", re.DOTALL
)


class Spool:
    """This process's spooling of request bodies, owned by the composition root
    (app/server/composition.py): `open` starts it, `close` ends it.

    `start_hash(upload_id, start)`: the hash of an upload's bytes before a chunk, as
    `(offset, hasher)`, or None; `upload_id` None means a new upload (offset 0), `start` None
    that the chunk goes at the upload's current offset. Called on a hashing thread. Without it,
    bodies are not hashed while they arrive."""

    def __init__(self, root: Path, start_hash: StartHash | None = None) -> None:
        self.root = root
        self.start_hash = start_hash
        self.pool: _HashThreads | None = None
        self.process_spool: spool_dirs.ProcessSpool | None = None

    @property
    def directory(self) -> Path | None:
        return self.process_spool.path if self.process_spool is not None else None

    def open(self) -> Spool:
        """Make waitress spool bodies into a directory of this process's own under `root`
        (app/server/spool_dirs.py), after removing those of processes that are gone (bodies of
        processes that were killed: a live process unlinks its own).

        waitress has no per-server hook for where a body past `inbuf_overflow` goes: its
        OverflowableBuffer makes a TempfileBasedBuffer, whose `newfile` makes the file. So that
        method is replaced, for the process, until `close` puts waitress's own back."""
        self.process_spool = spool_dirs.ProcessSpool.claim(self.root)
        spool_dirs.sweep(self.root, keep=self.process_spool.path)
        if self.start_hash is not None:
            self.pool = _HashThreads(HASH_THREADS, self.start_hash)
        spool = self

        def newfile(buffer):
            return spool.newfile()

        TempfileBasedBuffer.newfile = newfile
        return self

    def newfile(self) -> SpoolFile | DroppedBody:
        assert self.directory is not None, "open() first"
        try:
            file = SpoolFile(self.directory)
        except OSError as e:
            if e.errno not in FULL_ERRNOS:
                raise
            return DroppedBody()  # not even room for the file's name
        channel = getattr(_receiving, "channel", None)
        if channel is not None and self.pool is not None:
            file.body_hash = _hash_body_of(channel.request, file, self.pool)
        return file

    def close(self) -> None:
        """Put waitress's own spooling back, stop the hashing threads and remove this process's
        spool directory (at a clean exit; a killed process's is swept)."""
        TempfileBasedBuffer.newfile = _waitress_newfile
        if self.pool is not None:
            self.pool.stop()
        if self.process_spool is not None:
            self.process_spool.release()
            self.process_spool = None


class receiving:
    """Marks the channel whose bytes this (the loop) thread is parsing, so that a request body
    starting to spool knows its request: `with spool.receiving(channel): ...`."""

    __slots__ = ("channel",)

    def __init__(self, channel) -> None:
        self.channel = channel

    def __enter__(self) -> None:
        _receiving.channel = self.channel

    def __exit__(self, *exc) -> None:
        _receiving.channel = None


class SpoolFile(io.FileIO, spooled_body.SpooledBodyFile):
    """A request body on the blob store's filesystem, removed when closed.

    When the disk fills while the body arrives, the bytes are dropped instead (the file is
    emptied, giving back what it held) and the body marked `storage_full`: waitress then reads
    the request to its end as usual and the application answers 507 (`body_lost`), where an
    exception here would make waitress close the connection without a word."""

    body_hash: BodyHash | None = None
    storage_full = False

    def __init__(self, directory: Path) -> None:
        super().__init__(
            str(directory / f"body-{secrets.token_hex(12)}"),
            "x+",
            opener=lambda path, flags: os.open(path, flags, 0o600),
        )

    def write(self, data) -> int:
        if self.storage_full:
            return len(data)
        at = self.tell() if self.body_hash is not None else 0
        view = memoryview(data)
        try:
            done = super().write(view)
            while done < len(view):  # a regular file's write is short only when the disk is full
                n = super().write(view[done:])
                if not n:
                    raise OSError(errno.ENOSPC, f"could not write {self.name}")
                done += n
        except OSError as e:
            if e.errno not in FULL_ERRNOS:
                raise
            self._drop()
            return len(data)
        if self.body_hash is not None:
            self.body_hash.wrote(at, data)
        return done

    def _drop(self) -> None:
        self.storage_full = True
        if self.body_hash is not None:
            self.body_hash.abandon()
        self.truncate(0)

    def close(self) -> None:
        if not self.closed:
            name = self.name
            try:
                super().close()
            finally:
                if self.body_hash is not None:
                    self.body_hash.abandon()
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass


class DroppedBody(io.BytesIO, spooled_body.SpooledBodyFile):
    """The body of a request whose spool file could not even be created on a full disk: its
    bytes are dropped as they arrive, and the application answers 507 (`body_lost`)."""

    storage_full = True

    def write(self, data) -> int:
        return len(data)


def _hash_body_of(parser, spool: SpoolFile, pool: _HashThreads) -> BodyHash | None:
    """A BodyHash for an upload's body that starts spooling now (on the loop thread); None for
    any other body."""
    if parser is None or not getattr(parser, "headers_finished", False) or parser.completed:
        return None
    command = parser.command
    m = _UPLOAD_PATH.fullmatch(parser.path or "")
    if m is None or command not in ("POST", "PATCH", "PUT") or (command == "POST") == bool(m.group("id")):
        return None
    start = None
    header = parser.headers.get("CONTENT_RANGE")
    if header:
        parsed = content_range.parse(header)
        if parsed is None:
            return None  # the upload routes refuse it
        start = parsed[0]
    if command == "POST":
        if start not in (None, 0):
            return None  # a new upload's first chunk starts at 0: the upload routes refuse it
        start = 0
    body_hash = BodyHash(m.group("id"), start, os.dup(spool.fileno()), pool)
    pool.submit(body_hash)
    return body_hash


class _HashThreads:
    """A few daemon threads running BodyHash jobs in turn, started as bodies come (daemon: a
    body that stalls never holds up the process's exit)."""

    def __init__(self, size: int, start_hash: StartHash) -> None:
        self.start_hash = start_hash
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._size = size
        self.threads: list[threading.Thread] = []
        self.idle = 0  # threads waiting for a job
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, job: BodyHash) -> None:
        with self._lock:
            if len(self.threads) < self._size and not self._stopped:
                self.idle += 1  # until it takes its first job
                thread = threading.Thread(target=self._work, name="body-hash", daemon=True)
                self.threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def stop(self, timeout: float = 5.0) -> None:
        """End the threads once their bodies are done (the server has stopped receiving)."""
        with self._lock:
            self._stopped = True
            threads = list(self.threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self.idle -= 1
            try:
                job.run()
            finally:
                with self._lock:
                    self.idle += 1


class BodyHash:
    """The hash of an upload's bytes up to and including one spooled request body, computed on
    a pool thread while waitress writes the body. `result()` hands it to the upload service."""

    def __init__(self, upload_id: str | None, start: int | None, fd: int, pool: _HashThreads) -> None:
        self.upload_id, self.start = upload_id, start
        self._pool = pool
        self._fd = fd  # a duplicate of the spool's descriptor: ours to read and close
        self._cond = threading.Condition()
        self._queued: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queued_bytes = 0
        self._written = 0
        self._target: int | None = None  # set by result(): the body's final length
        self._abandoned = False
        self._hashed = 0
        self._outcome: tuple[int, Any] | None = None  # (offset the body starts at, hasher)
        self._state = "queued"  # then "running" and "done", or "cancelled" before it ran

    # -- the loop thread ----------------------------------------------------------------------

    def wrote(self, at: int, data) -> None:
        with self._cond:
            if at != self._written:  # not an append: nothing waitress does; give up to be safe
                self._abandoned = True
            else:
                self._written += len(data)
                # Held for a running job only (one waiting for a thread reads the file later),
                # so at most HASH_THREADS * QUEUED_LIMIT bytes are held per process.
                if self._state == "running" and self._queued_bytes < QUEUED_LIMIT and isinstance(data, bytes):
                    self._queued.append((at, data))  # bytes are immutable: shared, not copied
                    self._queued_bytes += len(data)
            self._cond.notify()

    def abandon(self) -> None:
        with self._cond:
            self._abandoned = True
            self._queued.clear()
            self._cond.notify_all()
        self._cancel()

    def _cancel(self) -> bool:
        """Cancel the job if no thread has taken it up yet (then nothing reads the descriptor)."""
        with self._cond:
            if self._state not in ("queued", "cancelled"):
                return False
            self._state = "cancelled"
        self._close_fd()
        return True

    # -- the hashing thread -------------------------------------------------------------------

    def run(self) -> None:
        with self._cond:
            if self._state != "queued":
                return
            self._state = "running"
            self._cond.notify_all()
        try:
            begun = self._pool.start_hash(self.upload_id, self.start)
            if begun is None or (self.start is not None and begun[0] != self.start):
                return
            offset, hasher = begun
            written_back = self._hashed
            while True:
                with self._cond:
                    while not self._abandoned and self._hashed >= self._written and self._target != self._hashed:
                        if not self._cond.wait(STALL):
                            return
                    if self._abandoned or (self._target is not None and self._hashed > self._target):
                        return
                    if self._target == self._hashed:
                        self._outcome = (offset, hasher)
                        return
                    piece = None
                    if self._queued and self._queued[0][0] == self._hashed:
                        piece = self._queued.popleft()[1]
                        self._queued_bytes -= len(piece)
                        size = len(piece)
                    else:
                        until = self._queued[0][0] if self._queued else self._written
                        size = min(READ, until - self._hashed)
                if piece is None:
                    piece = os.pread(self._fd, size, self._hashed)
                    if len(piece) != size:
                        return
                hasher.update(piece)  # without the GIL, beside the loop thread
                self._hashed += size
                # Only a body that starts an upload becomes its file (linked, not copied); a
                # later chunk's spooled bytes are copied into the upload and deleted, and
                # writing them to disk first would double the disk writes of a chunked push.
                if offset == 0 and self._hashed - written_back >= WRITEBACK_EVERY:
                    start_writeback(self._fd, written_back, self._hashed - written_back)
                    written_back = self._hashed
        except Exception:  # the service hashes the file itself
            return
        finally:
            self._close_fd()
            with self._cond:
                self._queued.clear()
                self._state = "done"
                self._cond.notify_all()

    def _close_fd(self) -> None:
        with self._cond:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    # -- the request thread -------------------------------------------------------------------

    def result(self, length: int) -> tuple[int, object] | None:
        """`(offset, hasher)`: the hash of the upload's first `offset` bytes followed by this
        body of `length` bytes, and the offset it was started at; None when there is none (the
        caller then hashes the body itself)."""
        if self._pool.idle:  # a free thread takes the job up at once
            with self._cond:
                self._cond.wait_for(lambda: self._state != "queued", timeout=START_WAIT)
        if self._cancel():  # every thread busy with other bodies: hashing the file here is as quick
            return None
        with self._cond:
            self._target = length
            self._cond.notify_all()
            while self._state != "done":
                self._cond.wait()
            return self._outcome
