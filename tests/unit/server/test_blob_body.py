"""BlobBody's buffer protocol as waitress's channel drives it (get, then skip what the socket
took), and its iteration for other WSGI servers, on a real file."""

from __future__ import annotations

import io
import os

from app.server import blob_body
from app.server.blob_body import BlobBody


class CountingFile(io.FileIO):
    read_bytes = 0

    def read(self, n=-1):
        data = super().read(n)
        CountingFile.read_bytes += len(data)
        return data

    def readinto(self, b):
        n = super().readinto(b)
        CountingFile.read_bytes += n or 0
        return n


class ReadOnly:
    """A store's reader with `read` only (the BlobReader protocol; GCS's)."""

    def __init__(self, f):
        self.f = f

    def read(self, n=-1):
        return self.f.read(n)

    def seek(self, *a):
        return self.f.seek(*a)

    def tell(self):
        return self.f.tell()

    def close(self):
        self.f.close()


def drain(body: BlobBody, length: int, took=lambda n: max(1, n // 3)) -> bytes:
    """What waitress's channel sends: get up to its send buffer, skip what the socket took."""
    assert body.prepare(length) == length
    sent = bytearray()
    while len(body):
        chunk = body.get(4096)
        n = took(len(chunk))
        sent += chunk[:n]
        body.skip(n, True)
    return bytes(sent)


def test_partial_sends_resend_the_unsent_rest_without_reading_it_again(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_body, "BLOCK", 1000)
    data = os.urandom(5000)
    (tmp_path / "b").write_bytes(data)
    CountingFile.read_bytes = 0
    body = BlobBody(CountingFile(tmp_path / "b"), 4321)
    body.file.seek(10)
    assert drain(body, 4321) == data[10:4331]  # the socket takes a third each time
    assert CountingFile.read_bytes == 4321
    body.close()
    assert body.file.closed


def test_iterating_stops_at_the_length(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_body, "BLOCK", 64)
    data = os.urandom(1000)
    (tmp_path / "b").write_bytes(data)
    f = open(tmp_path / "b", "rb")
    f.seek(100)
    assert b"".join(BlobBody(f, 300)) == data[100:400]


def test_blocks_read_into_one_buffer_come_out_whole_and_in_order(tmp_path, monkeypatch):
    """Every block lands in the same buffer: what was sent of one must not be overwritten by the
    next before it went (a whole block sent at once, then the next read)."""
    monkeypatch.setattr(blob_body, "BLOCK", 1000)
    data = os.urandom(10_500)
    (tmp_path / "b").write_bytes(data)
    body = BlobBody(open(tmp_path / "b", "rb"), len(data))
    assert drain(body, len(data), took=lambda n: n) == data
    assert len(body._block) == 1000
    small = BlobBody(open(tmp_path / "b", "rb"), 10)
    assert drain(small, 10, took=lambda n: n) == data[:10]
    assert len(small._block) == 10  # no larger than the blob


def test_a_reader_without_readinto_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_body, "BLOCK", 1000)
    data = os.urandom(3000)
    (tmp_path / "b").write_bytes(data)
    body = BlobBody(ReadOnly(open(tmp_path / "b", "rb")), 2500)
    assert drain(body, 2500) == data[:2500]
    body.close()
    assert body.file.f.closed
