"""A file response body: exactly `length` bytes from the file's current position, in blocks of
at most BLOCK, and closing it closes the file."""

from __future__ import annotations

import io

from app.edge import file_body
from app.edge.file_body import FileBody


def test_it_yields_length_bytes_from_the_current_position_in_blocks(monkeypatch):
    monkeypatch.setattr(file_body, "BLOCK", 4)
    file = io.BytesIO(b"headerPAYLOAD-OF-11trailer")
    file.seek(6)
    assert list(FileBody(file, 13)) == [b"PAYL", b"OAD-", b"OF-1", b"1"]


def test_a_file_shorter_than_promised_ends_the_body_early():
    assert b"".join(FileBody(io.BytesIO(b"short"), 100)) == b"short"


def test_a_zero_length_body_reads_nothing():
    file = io.BytesIO(b"abc")
    assert list(FileBody(file, 0)) == [] and file.tell() == 0


def test_closing_the_body_closes_the_file():
    file = io.BytesIO(b"abc")
    FileBody(file, 3).close()
    assert file.closed


def test_it_has_no_read_so_falcon_passes_it_through_as_an_iterable():
    assert not hasattr(FileBody(io.BytesIO(), 0), "read")
