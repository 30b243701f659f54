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


def test_partial_sends_resend_the_unsent_rest_without_reading_it_again(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_body, "BLOCK", 1000)
    data = os.urandom(5000)
    (tmp_path / "b").write_bytes(data)
    CountingFile.read_bytes = 0
    body = BlobBody(CountingFile(tmp_path / "b"), 4321)
    body.file.seek(10)
    assert body.prepare(4321) == 4321
    sent = bytearray()
    while len(body):
        chunk = body.get(4096)
        took = max(1, len(chunk) // 3)  # the socket takes a third each time
        sent += chunk[:took]
        body.skip(took, True)
    assert bytes(sent) == data[10:4331]
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
