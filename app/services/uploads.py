"""Blob uploads: append chunks, hash while writing, verify, then make the blob visible.

The hash of an upload's bytes so far is kept in memory only as a shortcut: after a restart (or
on another replica) it is recomputed from the stored bytes, so nothing but the stored bytes and
the committed offset is needed to continue an upload.

Who may write an upload's bytes: one request at a time, from the committed offset. Inside a
process a lock per upload orders requests; across replicas (PostgreSQL) the request holds the
upload's row lock (SELECT ... FOR UPDATE) while it writes and commits the new offset, so a
request on another replica waits, then sees the new offset. The offset is also only ever moved
by compare-and-set. So bytes below a committed offset are never rewritten, and a cached hash at
that offset stays true wherever the next chunk lands.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import peewee as pw

from app.db.models import Blob, Repository, RepositoryBlob, Upload, utcnow
from app.db.prepared import Prepared
from app.db.setup import (
    atomically,
    blob_lock,
    commit_without_flush,
    is_postgres,
    release_connection,
    serialize,
    transaction,
)
from app.db.writer import current_patience
from app.services import repositories
from app.services.hashstate import ResumableSha256, new_sha256
from app.spec import digests
from app.spec.errors import RegistryError
from app.storage.base import BlobStore, LockTimeout, blob_key
from app.storage.capacity import is_storage_full

log = logging.getLogger("berth.uploads")

CHUNK = 1024 * 1024
STREAM_ALGORITHM = "sha256"

# An upload's statements, compiled once (app/db/prepared.py): a small blob's POST and PUT are a
# dozen statements, and building each with peewee was a quarter of their CPU.
_START = Prepared(
    lambda i, repo, registry, offset, now: Upload.insert(
        id=i, repository=repo, registry_id=registry, offset=offset, created_at=now, updated_at=now
    ),
    "siiis",
)
_BY_ID = Prepared(lambda i: Upload.select().where(Upload.id == i), "s", Upload)
# PostgreSQL only (SQLite has no FOR UPDATE): compiled at its first use, not with the others.
_CLAIM = Prepared(lambda i: Upload.select().where(Upload.id == i).for_update(), "s", Upload, at_start=False)
_IN_REPOSITORY = Prepared(
    lambda i, repo: Upload.select().where((Upload.id == i) & (Upload.repository == repo)), "si", Upload
)
_SIZE = Prepared(lambda i: Upload.select(Upload.offset).where(Upload.id == i), "s")
_SET_OFFSET = Prepared(
    lambda offset, state, now, i, was: Upload.update(offset=offset, hash_state=state, updated_at=now).where(
        (Upload.id == i) & (Upload.offset == was)
    ),
    "ibssi",
)
_DELETE = Prepared(lambda i: Upload.delete().where(Upload.id == i), "s")
_UPSERT_BLOB = Prepared(  # the row, new or touched, comes back: no read after it
    lambda registry, digest, size, now: (
        Blob.insert(registry=registry, digest=digest, size=size, created_at=now, touched_at=now)
        .on_conflict(conflict_target=[Blob.registry, Blob.digest], update={Blob.touched_at: now})
        .returning(*Blob._meta.sorted_fields)
    ),
    "isis",
    Blob,
)
_LINK = Prepared(
    lambda repo, blob, now: RepositoryBlob.insert(repository=repo, blob=blob, created_at=now).on_conflict_ignore(),
    "iis",
)


class UploadService:
    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._hashers: dict[str, tuple[int, hashlib._Hash]] = {}
        self._locks: dict[str, _UploadLock] = {}
        self._guard = threading.Lock()

    def start(self, repository: Repository) -> Upload:
        upload_id = str(uuid.uuid4())
        self.store.create_upload(upload_id)
        try:
            now = utcnow()
            _START.cursor(upload_id, repository.id, repository.registry_id, 0, now)
            return Upload(
                id=upload_id,
                repository=repository,
                registry_id=repository.registry_id,
                offset=0,
                hash_state=None,
                created_at=now,
                updated_at=now,
            )
        except Exception:
            # The repository row went meanwhile (app/services/repositories.py: the caller starts
            # again on a new one), or the database is full: this attempt's storage must not linger.
            self.store.delete_upload(upload_id)
            raise

    def get(self, repository: Repository, upload_id: str) -> Upload:
        try:
            upload_id = str(uuid.UUID(upload_id))
        except ValueError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload id is not valid") from None
        upload = _IN_REPOSITORY.first(upload_id, repository.id)
        if upload is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} not found")
        return upload

    def append(
        self,
        upload: Upload,
        stream: BinaryIO,
        length: int | None,
        start: int | None = None,
        spooled=None,
    ) -> int:
        """Append a chunk; `start` (from Content-Range) must be the current offset."""
        with self._exclusive(upload.id), self._claim(upload.id) as upload:
            _check_start(upload, start)
            with self._dropping_on_full_disk(upload):
                return self._write(upload, stream, length, spooled)

    def finish(
        self,
        repository: Repository,
        upload: Upload,
        digest: str,
        stream: BinaryIO,
        length: int | None,
        spooled=None,
        start: int | None = None,
    ) -> Blob:
        """The closing PUT: append any last bytes (`start`, from Content-Range, must be the current
        offset, as for a chunk), verify the digest, make the blob visible."""
        expected = digests.parse(digest)
        with self._exclusive(upload.id), self._claim(upload.id) as upload:
            _check_start(upload, start)
            with self._dropping_on_full_disk(upload):
                # The new offset is not committed: the session ends here (its row goes with the
                # blob's publication), or, refused, stays at the offset it had.
                size = self._write(upload, stream, length, spooled, commit=False) if length else upload.offset
            actual = self._digest(upload, size, expected.algorithm)
            if actual != expected.encoded:
                self._forget(upload.id)
                self.store.delete_upload(upload.id)
                Upload.delete_by_id(upload.id)
                blob = None  # refused below, once the deletion is committed
            else:
                key = blob_key(repository.registry_id, str(expected))
                if self.store.blob_size(key) != size:
                    # The slow part (fsync), outside any lock. Skipped when the same bytes are
                    # stored already (a re-push): the upload is then dropped, not published; if
                    # the stored copy is collected meanwhile, commit_upload below fsyncs itself.
                    self.store.prepare_commit(upload.id, size)
                self._forget(upload.id)

                def publish() -> Blob:
                    # Under the blob's lock, which garbage collection takes too: the bytes and
                    # their row appear together, and a collection never deletes the file between.
                    serialize(blob_lock(repository.registry_id, str(expected)))
                    if self.store.blob_size(key) == size:
                        self.store.delete_upload(upload.id)  # identical bytes already stored
                    else:
                        self.store.commit_upload(upload.id, key, size)
                    now = utcnow()
                    blob = _UPSERT_BLOB.first(repository.registry_id, str(expected), size, now)
                    # Results not read: on PostgreSQL they go with the COMMIT (an error there
                    # undoes the whole transaction, as it would here).
                    _LINK.send(repository.id, blob.id, now)
                    _DELETE.send(upload.id)
                    return blob

                blob = atomically(publish)
        if blob is None:
            repositories.discard_if_empty(repository.id)  # the session made it; it stored nothing
            raise RegistryError(
                "DIGEST_INVALID",
                f"uploaded content has digest {expected.algorithm}:{actual}, not {digest}",
                detail={"digest": digest},
            )
        return blob

    def start_hash(self, upload_id: str | None, start: int | None):
        """Where hashing a chunk that is still arriving starts (app/server/spool.py, on its hashing
        thread, before the request is authorized): `(offset, hasher)` holding the hash of the
        upload's first `offset` bytes, or None. `upload_id` None: a new upload. `start` None: the
        chunk goes at the current offset. Whatever this returns is only used by `_write`, under
        the upload's claim, when the upload is still at `offset`."""
        if upload_id is None:
            return 0, new_sha256()
        with self._guard:  # an entry in _hashers is never being updated (see _hasher_at)
            cached = self._hashers.get(upload_id)
            if cached is not None and (start is None or cached[0] == start):
                return cached[0], cached[1].copy()
        try:
            row = Upload.select(Upload.offset, Upload.hash_state).where(Upload.id == upload_id).tuples().first()
        finally:
            release_connection()
        if row is None or (start is not None and row[0] != start):
            return None
        if row[0] == 0:
            return 0, new_sha256()
        resumed = ResumableSha256.resume(row[1])
        return (row[0], resumed) if resumed is not None else None

    def size_for_inline(self, upload_id: str) -> int | None:
        """The bytes an upload holds so far, for the event loop to decide, before the request
        is authorized, whether a small request on it runs there (app/server/inline.py): only
        ever used for that. None for an id that is not a known upload, one a request of this
        process is working on (the loop would have to wait for it: `_lock_wait`), or on any
        error."""
        try:
            upload_id = str(uuid.UUID(upload_id))
        except ValueError:
            return None
        with self._guard:
            if upload_id in self._locks:  # a request of this process is working on it: not here
                return None
            cached = self._hashers.get(upload_id)
        if cached is not None:
            return cached[0]
        try:
            rows = _SIZE.rows(upload_id)
            return rows[0][0] if rows else None
        except Exception:  # noqa: BLE001 - the request then runs on a request thread, as any other
            return None

    def abandon(self, upload: Upload) -> None:
        """Drop a session nobody can resume, after its request failed for want of space (a
        monolithic push: the client never learnt its id): the bytes first, which gives the space
        back, then the row, if the database can take a write now; if not, the expiry of idle
        uploads removes it later."""
        self._forget(upload.id)
        self.store.delete_upload(upload.id)
        try:
            Upload.delete_by_id(upload.id)
            repositories.discard_if_empty(upload.repository_id)
        except pw.PeeweeException as e:
            log.warning("could not remove abandoned upload %s yet: %s", upload.id, e)

    def cancel(self, upload: Upload) -> None:
        with self._exclusive(upload.id), self._claim(upload.id) as upload:
            self._forget(upload.id)
            Upload.delete_by_id(upload.id)
            self.store.delete_upload(upload.id)
        repositories.discard_if_empty(upload.repository_id)  # made for this session, maybe

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _dropping_on_full_disk(self, upload: Upload) -> Iterator[None]:
        """A write that ran out of space leaves nothing past the committed offset: the bytes it
        got down would otherwise hold their space until the next chunk or the upload's expiry."""
        try:
            yield
        except Exception as e:
            if is_storage_full(e):
                self._forget(upload.id)
                try:
                    self.store.discard_past(upload.id, upload.offset)
                except OSError as failed:
                    log.warning("could not drop the unacknowledged bytes of upload %s: %s", upload.id, failed)
            raise

    def _write(self, upload: Upload, stream: BinaryIO, length: int | None, spooled=None, commit: bool = True) -> int:
        """Stream the body to storage while hashing; commit the new offset (with `commit`; else
        only this process's cached hash is at it). Returns it.

        `spooled` (app/edge/spooled_body.py's Spooled): the body is already whole in a file, maybe
        hashed while it arrived. A first chunk is then taken over whole (linked, not copied),
        a later one appended in the kernel; either is read only if it still needs hashing."""
        offset = upload.offset
        if spooled is not None and length:
            if offset == 0 and self.store.adopt_upload(upload.id, spooled.path):
                hashed = spooled.hashed(length, upload.id, offset)
                if hashed is None:
                    hashed = new_sha256()
                    for chunk in self.store.read_upload(upload.id, length):
                        hashed.update(chunk)
                return self._commit_offset(upload, length, hashed, commit)
            if self.store.supports_append_file:
                hashed = self._append_spooled(upload, offset, spooled, length)
                return self._commit_offset(upload, offset + length, hashed, commit)
        hasher = self._hasher_at(upload, offset)
        remaining = length
        with self.store.open_upload_for_append(upload.id, offset) as f:
            while remaining is None or remaining > 0:
                chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                hasher.update(chunk)
                f.write(chunk)
                offset += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
            f.flush()
        if remaining:
            # Fewer bytes than Content-Length: drop them; the committed offset is unchanged.
            self._forget(upload.id)
            raise RegistryError("SIZE_INVALID", f"body ended {remaining} bytes short of Content-Length")
        return self._commit_offset(upload, offset, hasher, commit)

    def _append_spooled(self, upload: Upload, offset: int, spooled, length: int):
        """A later chunk spooled whole to a file: the store appends it (in the kernel) on
        another thread while this one takes its hash, computed while it arrived or else read
        from the file now; both run without the GIL, so the chunk costs the longer of the two
        rather than their sum. Returns the upload's hasher past the chunk."""
        failed: list[BaseException] = []

        def append() -> None:
            try:
                self.store.append_file(upload.id, offset, spooled.path, length)
            except BaseException as e:  # noqa: BLE001 - re-raised on the request's thread
                failed.append(e)

        copier = threading.Thread(target=append, name="upload-append", daemon=True)
        copier.start()
        try:
            hasher = spooled.hashed(length, upload.id, offset)
            if hasher is None:
                hasher = self._hasher_at(upload, offset)
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                with open(spooled.path, "rb", buffering=0) as f:
                    remaining = length
                    while remaining:
                        n = f.readinto(view[: min(CHUNK, remaining)])
                        if not n:
                            raise OSError(f"{spooled.path} is shorter than {length} bytes")
                        hasher.update(view[:n])
                        remaining -= n
        except BaseException:
            copier.join()
            self._forget(upload.id)
            raise
        copier.join()
        if failed:
            self._forget(upload.id)
            raise failed[0]
        return hasher

    def _commit_offset(self, upload: Upload, offset: int, hasher, commit: bool = True) -> int:
        if not commit:  # the closing PUT: its digest is taken from this hash next
            with self._guard:
                self._hashers[upload.id] = (offset, hasher)
            return offset
        state = hasher.state() if isinstance(hasher, ResumableSha256) else None
        commit_without_flush()  # a chunk is acknowledged, not yet durable: the closing PUT syncs
        updated = _SET_OFFSET.cursor(offset, state, utcnow(), upload.id, upload.offset).rowcount
        if updated != 1:
            self._forget(upload.id)
            raise RegistryError("BLOB_UPLOAD_INVALID", "upload changed concurrently; retry from its offset")
        with self._guard:
            self._hashers[upload.id] = (offset, hasher)
        upload.offset, upload.hash_state = offset, state
        return offset

    def _hasher_at(self, upload: Upload, offset: int):
        """The hash of an upload's first `offset` bytes: this process's cached hash when it is at
        `offset`; else the state saved with the committed offset (the previous chunk was handled
        by another worker or replica); else the cached hash or a new one, caught up on the bytes
        stored since (acknowledged bytes never change)."""
        with self._guard:
            cached = self._hashers.pop(upload.id, None)
        if cached is not None and cached[0] == offset:
            return cached[1]
        if upload.offset == offset and (resumed := ResumableSha256.resume(upload.hash_state)) is not None:
            return resumed
        if cached is not None and cached[0] < offset:
            start, hasher = cached
        else:
            start, hasher = 0, new_sha256()
        if start < offset:
            for chunk in self.store.read_upload(upload.id, offset, start):
                hasher.update(chunk)
        return hasher

    def _digest(self, upload: Upload, size: int, algorithm: str) -> str:
        if algorithm == STREAM_ALGORITHM:
            return self._hasher_at(upload, size).hexdigest()
        hasher = hashlib.new(algorithm)
        for chunk in self.store.read_upload(upload.id, size):
            hasher.update(chunk)
        return hasher.hexdigest()

    @contextmanager
    def _claim(self, upload_id: str) -> Iterator[Upload]:
        """The upload's current row, held for this request: on PostgreSQL under its row lock
        (other replicas' requests on it wait) in a transaction that commits what the request
        did; on SQLite under the store's lock on the upload, which other processes of this
        machine take too."""
        if not is_postgres():
            # SQLite: one machine, maybe several `berth serve --workers` processes; the store's
            # lock on the upload (a file lock) excludes the other processes.
            try:
                with self.store.upload_lock(upload_id, timeout=_lock_wait()):
                    upload = _BY_ID.first(upload_id)
                    if upload is None:
                        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} not found")
                    _check_small_on_loop(upload)
                    yield upload
            except LockTimeout:
                raise _busy() from None
            return
        with transaction():
            upload = _CLAIM.first(upload_id)
            if upload is None:
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} not found")
            yield upload

    def _forget(self, upload_id: str) -> None:
        with self._guard:
            self._hashers.pop(upload_id, None)

    def forget(self, upload_id: str) -> None:
        """Drop this process's cached hash of an upload that ended elsewhere (expired)."""
        self._forget(upload_id)

    def _exclusive(self, upload_id: str) -> _UploadLock:
        with self._guard:
            lock = self._locks.get(upload_id)
            if lock is None:
                lock = self._locks[upload_id] = _UploadLock(self, upload_id)
            lock.users += 1  # counted under the guard, so an idle lock is never dropped in use
            return lock


class _UploadLock:
    """Serialises requests on one upload inside this process; drops itself when idle."""

    def __init__(self, service: UploadService, upload_id: str) -> None:
        self._service = service
        self._id = upload_id
        self._lock = threading.Lock()
        self.users = 0

    def __enter__(self):
        wait = _lock_wait()
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            self._leave()
            raise _busy()
        return self

    def __exit__(self, *exc):
        self._lock.release()
        self._leave()
        return False

    def _leave(self) -> None:
        with self._service._guard:
            self.users -= 1
            if self.users == 0:
                self._service._locks.pop(self._id, None)


# The most bytes an upload may hold for a request on it to run on the event loop (app/server/
# inline.py decides by it, before the request runs; _claim checks it again, under the lock).
INLINE_MOST = 64 * 1024


def _lock_wait() -> float | None:
    """How long this thread waits for a session's locks: as long as it takes (None) on a request
    thread; not at all on the event loop (the thread with a `patience`: app/server/inline.py).
    Another request holds them for as long as its chunk takes to append (seconds for a large
    one, and a client can send those back to back), and the loop serves every connection of its
    process: a request on a busy session is answered 503 (retry) at once. The loop only takes
    requests on sessions no request of its process is working on (`size_for_inline`), so this
    is a request racing one in another process, or one started since the look."""
    return None if current_patience() is None else 0.0


def _check_small_on_loop(upload: Upload) -> None:
    """On the event loop (the thread with a `patience`: app/server/inline.py), an upload that
    grew past INLINE_MOST since the loop looked (another request on it, elsewhere, meanwhile) is
    not worked on: finishing it would hash and fsync its bytes there, holding up every connection
    of the process. Retryable: the retry finds it large and runs on a request thread."""
    if current_patience() is not None and upload.offset > INLINE_MOST:
        raise _busy()


def _busy() -> RegistryError:
    """The event loop found the upload busy with another request, or grown past what it takes
    (`_lock_wait`, `_check_small_on_loop`): retryable."""
    return RegistryError(
        "UNAVAILABLE", "another request on this upload is in progress; retry", headers={"Retry-After": "1"}
    )


def _check_start(upload: Upload, start: int | None) -> None:
    """RANGE_INVALID unless a chunk said to start at `start` continues the upload (None: it goes
    wherever the upload ends). Checked under the upload's claim, so it holds when the bytes land."""
    if start is not None and start != upload.offset:
        raise RegistryError(
            "RANGE_INVALID",
            f"chunk starts at {start} but the upload has {upload.offset} bytes",
            headers=range_headers(upload.offset),
        )


def range_headers(offset: int) -> dict[str, str]:
    """The `Range` of bytes an upload holds, as the spec words it: `0-<last byte>`."""
    return {"Range": f"0-{max(offset - 1, 0)}"}
