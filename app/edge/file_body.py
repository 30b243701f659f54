"""A file response body: what a resource sets as `resp.stream` to send `length` bytes of an
open file from its current position (a blob GET).

It is a plain iterable (no `read`, so Falcon passes it through untouched): any WSGI server
iterates it in blocks. The HTTP server (app/server/blob_body.py) recognises it and sends it its
own way, from its event loop, each block read from the file once.
"""

from __future__ import annotations

from app.storage.base import BlobReader

BLOCK = 4 * 1024 * 1024


class FileBody:
    __slots__ = ("file", "length", "_left")

    def __init__(self, file: BlobReader, length: int) -> None:
        self.file, self.length = file, length
        self._left = length

    def __iter__(self) -> FileBody:
        return self

    def __next__(self) -> bytes:
        data = self.file.read(min(BLOCK, self._left)) if self._left > 0 else b""
        if not data:
            raise StopIteration
        self._left -= len(data)
        return data

    def close(self) -> None:
        self.file.close()
