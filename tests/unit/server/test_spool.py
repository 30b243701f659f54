"""Upload bodies hashed while waitress receives them (app/server/spool.py), through waitress's real
request parser and buffers, a real SQLite database and the filesystem store: the hash is right,
starts where the upload is, is used by the upload service instead of rereading the body, and is
dropped whenever it might not be the upload's."""

from __future__ import annotations

import hashlib
import io
import os
import types

import pytest
from waitress.adjustments import Adjustments
from waitress.buffers import TempfileBasedBuffer
from waitress.parser import HTTPRequestParser

from app.db.models import Organization, Registry, Repository
from app.db.setup import open_database
from app.edge.spooled_body import Spooled, spooled_file
from app.server import spool
from app.services.uploads import UploadService
from app.storage.filesystem import FilesystemStore

MiB = 1024 * 1024


@pytest.fixture
def env(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    repository = Repository.create(registry=Registry.create(org=Organization.create(name="o"), name="r"), name="app")
    store = FilesystemStore(tmp_path / "storage")
    service = UploadService(store)
    waitress_newfile = TempfileBasedBuffer.newfile
    spooling = spool.Spool(store.spool_dir, lambda *a: env.service.start_hash(*a)).open()
    env = types.SimpleNamespace(repository=repository, store=store, service=service, spool=spooling)
    yield env
    spooling.close()
    assert TempfileBasedBuffer.newfile is waitress_newfile  # waitress's own spooling is back
    assert not list(store.spool_dir.iterdir())  # this process's directory is gone
    db.close()


def receive(
    method: str, path: str, body: bytes, headers: dict | None = None, piece: int = 256 * 1024, chunked: bool = False
):
    """Feed a request to waitress's parser the way its loop does, in `piece`-sized reads."""
    parser_holder = types.SimpleNamespace(request=None)
    head = [f"{method} {path} HTTP/1.1", "Host: registry"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        wire = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + MiB]), body[i : i + MiB]) for i in range(0, len(body), MiB))
        wire += b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        wire = body
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + wire
    parser = parser_holder.request = HTTPRequestParser(Adjustments(inbuf_overflow=MiB))
    with spool.receiving(parser_holder):
        for i in range(0, len(data), piece):
            _feed(parser, data[i : i + piece])
    assert parser.completed and not parser.error
    return parser


def _feed(parser, data: bytes) -> None:
    while data:  # as waitress's channel does: the parser takes what it needs of each read
        n = parser.received(data)
        data = data[n:]
        if parser.completed:
            assert not data
            return


def spooled_of(parser) -> Spooled:
    length = int(parser.headers["CONTENT_LENGTH"])
    found = spooled_file(parser.get_body_stream(), length)
    assert found is not None and found.body_hash is not None
    return found


def test_a_new_uploads_body_is_hashed_as_it_arrives(env):
    body = os.urandom(5 * MiB + 11)
    parser = receive("POST", "/v2/o/r/app/blobs/uploads/", body)
    hasher = spooled_of(parser).hashed(len(body), "any-upload", 0)
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(body).hexdigest()
    parser.close()
    assert not list(env.store.spool_dir.rglob("body-*"))


def test_a_later_chunk_continues_from_the_uploads_saved_state(env):
    """The hash of the upload's first bytes comes from the state saved with its offset (a new
    service: nothing cached, as when the previous chunk went to another worker)."""
    first, second = os.urandom(2 * MiB + 3), os.urandom(3 * MiB + 5)
    upload = env.service.start(env.repository)
    env.service.append(upload, io.BytesIO(first), len(first), 0)
    env.service = UploadService(env.store)  # the spool asks it for the hash to start from
    path = f"/v2/o/r/app/blobs/uploads/{upload.id}"
    parser = receive("PATCH", path, second, {"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"})
    spooled = spooled_of(parser)
    hasher = spooled.hashed(len(second), upload.id, len(first))
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(first + second).hexdigest()
    parser.close()


def test_the_upload_service_uses_the_hash_instead_of_reading_the_body_again(env, monkeypatch):
    first, second = os.urandom(2 * MiB), os.urandom(4 * MiB + 1)
    upload = env.service.start(env.repository)
    path = f"/v2/o/r/app/blobs/uploads/{upload.id}"
    read_back = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: (read_back.append(str(f)), real_open(f, *a, **k))[1])
    uploads_dir = str(env.store.uploads)
    for start, body, headers in (
        (0, first, {}),
        (len(first), second, {"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"}),
    ):
        parser = receive("PATCH", path, body, headers, chunked=not headers)  # docker streams chunked
        spooled = spooled_of(parser)
        assert env.service.append(
            upload, parser.get_body_stream(), len(body), start if headers else None, spooled
        ) == start + len(body)
        parser.close()
    # Neither body was read to hash it: the first was linked and never opened, the second
    # opened once, by the kernel copy into the upload; the upload itself was not read back.
    assert len([p for p in read_back if p.startswith(str(env.store.spool_dir))]) == 1
    assert not [p for p in read_back if p.startswith(uploads_dir)]
    blob = env.service.finish(
        env.repository, upload, "sha256:" + hashlib.sha256(first + second).hexdigest(), io.BytesIO(), 0
    )
    assert blob.size == len(first) + len(second)


def test_a_hash_for_another_offset_is_not_used(env):
    """The chunk's Content-Range says 7 while the upload is at 0: nothing is hashed, and the
    service refuses the range as ever."""
    upload = env.service.start(env.repository)
    body = os.urandom(2 * MiB)
    parser = receive(
        "PATCH", f"/v2/o/r/app/blobs/uploads/{upload.id}", body, {"Content-Range": f"7-{7 + len(body) - 1}"}
    )
    assert spooled_of(parser).hashed(len(body), upload.id, 0) is None
    parser.close()
    # And a hash started at 0 is not one for an upload that is past 0 by the time it is used.
    parser = receive("PUT", f"/v2/o/r/app/blobs/uploads/{upload.id}", body)
    assert spooled_of(parser).hashed(len(body), upload.id, 5) is None
    parser.close()


def test_a_new_uploads_body_that_says_it_starts_past_zero_is_not_hashed(env):
    """A POST's body is the first chunk of a new upload: one whose Content-Range starts past 0
    is refused by the upload routes (416), so no thread spends time hashing it."""
    body = os.urandom(2 * MiB)
    parser = receive("POST", "/v2/o/r/app/blobs/uploads/", body, {"Content-Range": f"7-{7 + len(body) - 1}"})
    assert spooled_file(parser.get_body_stream(), len(body)).body_hash is None
    parser.close()
    parser = receive("POST", "/v2/o/r/app/blobs/uploads/", body, {"Content-Range": f"bytes 0-{len(body) - 1}/*"})
    hasher = spooled_of(parser).hashed(len(body), "any-upload", 0)
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(body).hexdigest()
    parser.close()


def test_a_closing_put_is_hashed_from_the_start_its_content_range_names(env):
    """The closing PUT's last bytes are hashed on from the offset its Content-Range names (the
    upload routes read the header with the same grammar, and refuse any other start)."""
    first, last = os.urandom(MiB + 1), os.urandom(2 * MiB)
    upload = env.service.start(env.repository)
    env.service.append(upload, io.BytesIO(first), len(first), 0)
    parser = receive(
        "PUT",
        f"/v2/o/r/app/blobs/uploads/{upload.id}?digest=x",
        last,
        {"Content-Range": f"bytes {len(first)}-{len(first) + len(last) - 1}/{len(first) + len(last)}"},
    )
    hasher = spooled_of(parser).hashed(len(last), upload.id, len(first))
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(first + last).hexdigest()
    parser.close()


def test_past_the_queue_limit_the_hashing_thread_reads_the_file(env, monkeypatch):
    monkeypatch.setattr(spool, "QUEUED_LIMIT", 64 * 1024)
    body = os.urandom(6 * MiB + 1)
    parser = receive("POST", "/v2/o/r/app/blobs/uploads/", body)
    hasher = spooled_of(parser).hashed(len(body), "u", 0)
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(body).hexdigest()
    parser.close()


def test_an_abandoned_body_leaves_no_thread_waiting_and_no_descriptor_open(env):
    fds = len(os.listdir("/proc/self/fd"))
    parser = HTTPRequestParser(Adjustments(inbuf_overflow=MiB))
    with spool.receiving(types.SimpleNamespace(request=parser)):
        _feed(parser, b"POST /v2/o/r/app/blobs/uploads/ HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n")
        _feed(parser, os.urandom(3 * MiB))
    body_hash = parser.get_body_stream().body_hash
    assert body_hash is not None
    parser.close()  # the client went away: waitress closes the body
    with body_hash._cond:
        assert body_hash._cond.wait_for(lambda: body_hash._state in ("done", "cancelled"), timeout=10)
    assert body_hash._outcome is None
    assert len(os.listdir("/proc/self/fd")) == fds
    assert not list(env.store.spool_dir.rglob("body-*"))


def test_other_bodies_are_spooled_without_hashing(env):
    parser = receive("PUT", "/v2/o/r/app/manifests/v1", os.urandom(2 * MiB))
    stream = parser.get_body_stream()
    assert stream.body_hash is None and spooled_file(stream, 2 * MiB) is not None
    parser.close()


def test_with_every_hashing_thread_busy_the_service_hashes_the_file_itself(env, monkeypatch):
    env.spool.pool.stop()
    env.spool.pool = spool._HashThreads(1, env.spool.start_hash)
    stalled = HTTPRequestParser(Adjustments(inbuf_overflow=MiB))  # a client that stopped sending
    with spool.receiving(types.SimpleNamespace(request=stalled)):
        _feed(stalled, b"POST /v2/o/r/app/blobs/uploads/ HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n")
        _feed(stalled, os.urandom(2 * MiB))
    upload = env.service.start(env.repository)
    body = os.urandom(3 * MiB)
    parser = receive("PATCH", f"/v2/o/r/app/blobs/uploads/{upload.id}", body)
    spooled = spooled_of(parser)
    assert spooled.hashed(len(body), upload.id, 0) is None and spooled.body_hash._state == "cancelled"
    assert env.service.append(upload, parser.get_body_stream(), len(body), None, spooled) == len(body)
    blob = env.service.finish(env.repository, upload, "sha256:" + hashlib.sha256(body).hexdigest(), io.BytesIO(), 0)
    assert blob.size == len(body)
    parser.close()
    stalled.close()


def test_the_hashing_thread_starts_writing_the_body_to_disk_as_it_goes(env, monkeypatch):
    """Every WRITEBACK_EVERY hashed bytes the kernel is asked to start writing them out (so the
    fsync before the blob is acknowledged finds them on disk already): each range once, in
    order, on the spool file itself."""
    calls = []
    real = spool.start_writeback

    def recording(fd, offset, length):
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(spool, "WRITEBACK_EVERY", MiB)
    monkeypatch.setattr(spool, "start_writeback", recording)
    body = os.urandom(5 * MiB + 7)
    parser = receive("POST", "/v2/o/r/app/blobs/uploads/", body)
    hasher = spooled_of(parser).hashed(len(body), "u", 0)
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(body).hexdigest()
    parser.close()
    assert len(calls) >= 4 and all("/body-" in path for path, _, _ in calls)
    ranges = [(offset, length) for _, offset, length in calls]
    assert ranges[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False))
    assert all(n >= MiB for _, n in ranges) and ranges[-1][0] + ranges[-1][1] <= len(body)


def test_a_later_chunks_body_is_hashed_but_not_written_to_disk_early(env, monkeypatch):
    """A chunk after the first is copied into the upload and its spooled file deleted: writing
    the spooled bytes to disk on the way would double a chunked push's disk writes."""
    calls = []
    monkeypatch.setattr(spool, "WRITEBACK_EVERY", MiB)
    monkeypatch.setattr(spool, "start_writeback", lambda *a: calls.append(a))
    first, second = os.urandom(MiB + 3), os.urandom(5 * MiB + 5)
    upload = env.service.start(env.repository)
    env.service.append(upload, io.BytesIO(first), len(first), 0)
    path = f"/v2/o/r/app/blobs/uploads/{upload.id}"
    parser = receive("PATCH", path, second, {"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"})
    hasher = spooled_of(parser).hashed(len(second), upload.id, len(first))
    assert hasher is not None and hasher.hexdigest() == hashlib.sha256(first + second).hexdigest()
    parser.close()
    assert calls == []  # (a first chunk's are: the test above)
