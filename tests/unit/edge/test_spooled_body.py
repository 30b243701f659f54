"""The seam between the server's spool files and the upload routes: a request body is handed over
as a file only when the file holds exactly the body's unread bytes, and its hash only when it is
the hash of that upload from that offset."""

from __future__ import annotations

import hashlib
import io

import falcon.stream
import pytest

from app.edge.spooled_body import Spooled, SpooledBodyFile, body_lost, spooled_file


class SpoolFile(io.FileIO, SpooledBodyFile):
    """A spool file as the server makes one (app/server/spool.py): a real file on disk."""


class Hash:
    def __init__(self, upload_id: str | None, start: int, length: int) -> None:
        self.upload_id, self.start, self.length = upload_id, start, length
        self.hasher = hashlib.sha256(b"body")

    def result(self, length: int):
        return (self.start, self.hasher) if length == self.length else None


@pytest.fixture
def spool(tmp_path):
    path = tmp_path / "spool-1"
    path.write_bytes(b"0123456789")
    with SpoolFile(str(path), "rb") as file:
        yield file


def test_an_unread_spool_file_behind_falcons_stream_is_handed_over_with_its_hash(spool):
    spool.body_hash = Hash("u1", 0, 10)
    spooled = spooled_file(falcon.stream.BoundedStream(spool, 10), 10)
    assert spooled is not None and spooled.path == spool.name
    assert spooled.body_hash is spool.body_hash


def test_a_spool_file_partly_read_or_of_another_length_is_not_handed_over(spool):
    assert spooled_file(spool, 9) is None
    stream = falcon.stream.BoundedStream(spool, 10)
    stream.read(1)
    assert spooled_file(stream, 10) is None
    spool.seek(3)
    assert spooled_file(spool, 10) is None


def test_a_body_in_memory_or_empty_is_read_through_the_stream():
    assert spooled_file(io.BytesIO(b"0123456789"), 10) is None
    assert spooled_file(io.BytesIO(b""), 0) is None


def test_a_closed_spool_file_is_not_handed_over(tmp_path):
    path = tmp_path / "spool-2"
    path.write_bytes(b"abc")
    file = SpoolFile(str(path), "rb")
    file.close()
    assert spooled_file(file, 3) is None


def test_the_hash_is_used_only_for_the_same_upload_offset_and_length():
    body_hash = Hash("u1", 100, 10)
    spooled = Spooled("/spool/1", body_hash)
    assert spooled.hashed(10, "u1", 100) is body_hash.hasher
    assert spooled.hashed(10, "u2", 100) is None  # another upload's hash
    assert spooled.hashed(10, "u1", 0) is None  # from another offset
    assert spooled.hashed(9, "u1", 100) is None  # not over this body
    assert Spooled("/spool/1", None).hashed(10, "u1", 100) is None


def test_a_hash_from_the_start_serves_any_upload_starting_there():
    body_hash = Hash(None, 0, 10)
    assert Spooled("/spool/1", body_hash).hashed(10, "u9", 0) is body_hash.hasher


def test_a_body_dropped_on_a_full_disk_is_reported_through_falcons_stream(spool):
    assert not body_lost(falcon.stream.BoundedStream(spool, 10))
    spool.storage_full = True
    assert body_lost(falcon.stream.BoundedStream(spool, 10))
    assert not body_lost(io.BytesIO(b""))
