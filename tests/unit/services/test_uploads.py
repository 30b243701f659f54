"""Chunked uploads whose chunks land on different processes (simulated by a fresh UploadService
per chunk, each with nothing cached) on a real SQLite database and filesystem store: the hash
continues from the state saved with the committed offset instead of rereading the upload."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from app.db.models import Blob, Organization, Registry, Repository, Upload
from app.db.setup import commit_without_flush, open_database
from app.edge.spooled_body import Spooled
from app.services.hashstate import ResumableSha256
from app.services.uploads import UploadService
from app.spec.errors import RegistryError
from app.storage.filesystem import FilesystemStore


class CountingStore(FilesystemStore):
    """The real filesystem store, counting the upload bytes read back."""

    reread = 0

    def read_upload(self, upload_id, length, start=0):
        for chunk in super().read_upload(upload_id, length, start):
            CountingStore.reread += len(chunk)
            yield chunk


@pytest.fixture
def repo(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    registry = Registry.create(org=Organization.create(name="o"), name="r")
    CountingStore.reread = 0
    yield Repository.create(registry=registry, name="app"), CountingStore(tmp_path / "storage")
    db.close()


def _chunked(repository, store, data: bytes, sizes, digest: str | None = None) -> Blob:
    """Upload `data` in chunks of `sizes`, each through a new service (another process)."""
    upload = UploadService(store).start(repository)
    offset = 0
    for n in sizes:
        service = UploadService(store)
        service.append(service.get(repository, upload.id), io.BytesIO(data[offset : offset + n]), n, offset)
        offset += n
    service = UploadService(store)
    return service.finish(
        repository,
        service.get(repository, upload.id),
        digest or "sha256:" + hashlib.sha256(data).hexdigest(),
        io.BytesIO(),
        0,
    )


def test_chunks_on_other_processes_do_not_rehash(repo):
    repository, store = repo
    data = os.urandom(3 * 1024 * 1024 + 77)
    blob = _chunked(repository, store, data, [1024 * 1024 + 5, 63, 2 * 1024 * 1024 + 9])
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert CountingStore.reread == 0  # every chunk resumed from the saved state
    with store.open_blob(f"{repository.registry_id}/sha256/{blob.digest[7:9]}/{blob.digest[7:]}") as f:
        assert f.read() == data


def test_a_wrong_digest_is_still_refused(repo):
    repository, store = repo
    data = os.urandom(200_000)
    with pytest.raises(RegistryError) as refused:
        _chunked(repository, store, data, [100_000, 100_000], "sha256:" + hashlib.sha256(data[:-1]).hexdigest())
    assert refused.value.code == "DIGEST_INVALID"
    assert Blob.select().count() == 0


def test_an_upload_without_a_saved_state_is_rehashed(repo):
    """A row from before migration 7, or a state this build cannot read: the stored bytes are
    hashed again, and the result is the same."""
    repository, store = repo
    data = os.urandom(300_000)
    service = UploadService(store)
    upload = service.start(repository)
    service.append(upload, io.BytesIO(data[:100_000]), 100_000, 0)
    Upload.update(hash_state=b"openssl-sha256-ctx:not-a-state").where(Upload.id == upload.id).execute()
    service = UploadService(store)
    service.append(service.get(repository, upload.id), io.BytesIO(data[100_000:]), 200_000, 100_000)
    assert CountingStore.reread == 100_000
    service = UploadService(store)
    blob = service.finish(
        repository, service.get(repository, upload.id), "sha256:" + hashlib.sha256(data).hexdigest(), io.BytesIO(), 0
    )
    assert blob.size == len(data)


@pytest.mark.parametrize("split", [0, 1, 55, 56, 63, 64, 65, 4096, 99_999])
def test_resumed_state_equals_hashlib(split):
    data = os.urandom(100_000)
    first = ResumableSha256()
    first.update(data[:split])
    resumed = ResumableSha256.resume(first.state())
    resumed.update(memoryview(data)[split:])
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert ResumableSha256.resume(first.state()[:-1]) is None
    assert ResumableSha256.resume(None) is None


def test_spooled_chunks_are_appended_in_the_kernel_and_hashed_alongside(repo, tmp_path):
    """Bodies waitress spooled whole to files (here: files in the store's spool directory, with
    no hash computed while they arrived): the first is linked, later ones copied with
    copy_file_range while this thread hashes them."""
    repository, store = repo
    data = os.urandom(13 * 1024 * 1024 + 3)
    sizes = [5 * 1024 * 1024, 6 * 1024 * 1024, 2 * 1024 * 1024 + 3]
    store.spool_dir.mkdir(parents=True, exist_ok=True)
    service = UploadService(store)
    upload = service.start(repository)
    offset = 0
    for i, n in enumerate(sizes):
        body = store.spool_dir / f"body-{i}"
        body.write_bytes(data[offset : offset + n])
        with open(body, "rb") as stream:
            assert service.append(upload, stream, n, offset, Spooled(str(body), None)) == offset + n
        body.unlink()  # as waitress does once the request ends: the upload must not depend on it
        offset += n
    blob = service.finish(repository, upload, "sha256:" + hashlib.sha256(data).hexdigest(), io.BytesIO(), 0)
    with store.open_blob(f"{repository.registry_id}/sha256/{blob.digest[7:9]}/{blob.digest[7:]}") as f:
        assert f.read() == data
    assert CountingStore.reread == 5 * 1024 * 1024  # only the linked first chunk, read to hash it


def test_a_failed_kernel_append_leaves_the_upload_at_its_offset(repo):
    repository, store = repo
    service = UploadService(store)
    upload = service.start(repository)
    service.append(upload, io.BytesIO(b"a" * 10), 10, 0)
    missing = str(store.spool_dir / "body-gone")
    with pytest.raises(OSError):
        service.append(upload, io.BytesIO(), 8 * 1024 * 1024, 10, Spooled(missing, None))
    assert Upload.get_by_id(upload.id).offset == 10
    service.append(upload, io.BytesIO(b"b" * 5), 5, 10)
    blob = service.finish(
        repository, upload, "sha256:" + hashlib.sha256(b"a" * 10 + b"b" * 5).hexdigest(), io.BytesIO(), 0
    )
    assert blob.size == 15


def test_on_the_event_loop_a_session_grown_past_the_inline_limit_is_left_for_a_retry(repo):
    """A request the loop took for a small session's (app/server/inline.py) finds, under the
    session's lock, that it grew meanwhile: 503 (retry), nothing written; the same request on a
    request thread (no patience) goes on."""
    from app.db.setup import patience
    from app.services.uploads import INLINE_MOST

    repository, store = repo
    service = UploadService(store)
    upload = service.start(repository)
    big = os.urandom(INLINE_MOST + 1)
    service.append(service.get(repository, upload.id), io.BytesIO(big), len(big), 0)
    with patience(2.0), pytest.raises(RegistryError) as refused:
        service.append(service.get(repository, upload.id), io.BytesIO(b"more"), 4, len(big))
    assert refused.value.code == "UNAVAILABLE" and refused.value.headers["Retry-After"] == "1"
    assert Upload.get_by_id(upload.id).offset == len(big)
    assert service.size_for_inline(upload.id) == len(big)
    service.append(service.get(repository, upload.id), io.BytesIO(b"more"), 4, len(big))
    assert service.size_for_inline(upload.id) == len(big) + 4
    assert UploadService(store).size_for_inline(upload.id) == len(big) + 4  # another process: the row
    assert service.size_for_inline("not-a-session") is None


def test_on_the_event_loop_a_session_another_request_holds_is_not_waited_for(repo):
    """Another process (here: this test) holds the session's file lock: a request thread waits
    for it; the loop does not wait at all, 503 (retry). A request of this process working on the
    session: the loop is told not to take requests on it (size_for_inline), and if one got there
    anyway, it is refused at once too."""
    import fcntl
    import time

    from app.db.setup import patience

    repository, store = repo
    service = UploadService(store)
    upload = service.start(repository)
    fd = os.open(store._upload_path(upload.id).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with patience(2.0), pytest.raises(RegistryError) as refused:
            service.append(service.get(repository, upload.id), io.BytesIO(b"x"), 1, 0)
        assert time.monotonic() - started < 0.5
        assert refused.value.code == "UNAVAILABLE"
    finally:
        os.close(fd)
    assert service.size_for_inline(upload.id) == 0
    held = service._exclusive(upload.id)  # a request of this process's holds it
    held.__enter__()
    try:
        assert service.size_for_inline(upload.id) is None
        started = time.monotonic()
        with patience(2.0), pytest.raises(RegistryError):
            service.append(service.get(repository, upload.id), io.BytesIO(b"x"), 1, 0)
        assert time.monotonic() - started < 0.5
    finally:
        held.__exit__(None, None, None)
    assert service._locks == {}  # the refused attempt left no lock behind
    assert service.size_for_inline(upload.id) == 0
    service.append(service.get(repository, upload.id), io.BytesIO(b"x"), 1, 0)
    assert Upload.get_by_id(upload.id).offset == 1


@pytest.fixture
def pg_repo(pg, tmp_path):
    registry = Registry.create(org=Organization.create(name="o"), name="r")
    CountingStore.reread = 0
    return Repository.create(registry=registry, name="app"), CountingStore(tmp_path / "storage")


def test_on_postgres_a_chunk_commits_without_waiting_for_the_flush_and_the_closing_put_waits(pg_repo, messages):
    """Real PostgreSQL: a chunk's transaction (its new offset and hash state) is committed with
    synchronous_commit off, sent with its UPDATE (no message more), for that transaction only;
    the closing PUT's, which makes the blob visible and acknowledges it, waits for the flush."""
    repository, store = pg_repo
    service = UploadService(store)
    upload = service.start(repository)
    messages.clear()
    service.append(upload, io.BytesIO(b"a" * 1000), 1000, 0)
    sent = [m for m in messages if not m.startswith("PREPARE ")]  # once per connection
    assert sent[0].startswith("BEGIN; ")  # the claim
    (update,) = [m for m in messages if "synchronous_commit" in m]
    assert update.startswith("SET LOCAL synchronous_commit TO off; EXECUTE ")  # with the offset's update
    db = Upload._meta.database
    assert db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"  # the connection's, after
    messages.clear()
    blob = service.finish(repository, upload, "sha256:" + hashlib.sha256(b"a" * 1000).hexdigest(), io.BytesIO(), 0)
    assert blob.size == 1000
    assert [m for m in messages if not m.startswith("PREPARE ")][0].startswith("BEGIN; ")
    assert not any("synchronous_commit" in m for m in messages)
    with pytest.raises(RuntimeError):  # outside a transaction: refused, not a session-wide setting
        commit_without_flush()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_an_offset_lost_to_a_crash_goes_back_whole_and_the_upload_resumes_from_it(database, request):
    """What a chunk's unflushed commit can lose: the offset and hash state (one row) go back to
    the previous chunk's while the upload file already holds the lost chunk's bytes (more of them
    than the client sends again). The client resumes from the offset it is told; the blob holds
    exactly the bytes acknowledged since, and its digest is right."""
    repository, store = request.getfixturevalue("pg_repo" if database == "postgres" else "repo")
    data = os.urandom(250_000)  # shorter than what the file held: the lost chunk's tail must go
    service = UploadService(store)
    upload = service.start(repository)
    service.append(upload, io.BytesIO(data[:100_000]), 100_000, 0)
    before = Upload.get_by_id(upload.id)
    service.append(service.get(repository, upload.id), io.BytesIO(b"x" * 200_000), 200_000, 100_000)
    Upload.update(offset=before.offset, hash_state=before.hash_state).where(Upload.id == upload.id).execute()
    service = UploadService(store)  # the server restarted: nothing cached
    resumed = service.get(repository, upload.id)
    assert resumed.offset == 100_000
    with pytest.raises(RegistryError) as wrong:  # the lost chunk's end is not where it continues
        service.append(resumed, io.BytesIO(data[200_000:]), 50_000, 300_000)
    assert wrong.value.code == "RANGE_INVALID"
    service.append(service.get(repository, upload.id), io.BytesIO(data[100_000:]), 150_000, 100_000)
    blob = service.finish(
        repository, service.get(repository, upload.id), "sha256:" + hashlib.sha256(data).hexdigest(), io.BytesIO(), 0
    )
    with store.open_blob(f"{repository.registry_id}/sha256/{blob.digest[7:9]}/{blob.digest[7:]}") as f:
        assert f.read() == data
    assert CountingStore.reread == 0  # resumed from the row's hash state
