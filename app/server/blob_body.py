"""A blob's bytes as waitress sends them: each block read from the file once.

waitress sends a `wsgi.file_wrapper` body from its event loop: it reads as much as the socket's
send buffer holds (SO_SNDBUF: 4 MiB on loopback here), sends what the socket takes, seeks back
and, next time the socket is writable, reads again from the first unsent byte. A client that
reads slower than the loop sends (every pull with several streams on two cores) takes a fraction
of each read, so the same bytes were read from the page cache several times over. This body
keeps the unsent rest of its last read instead, and reads at most BLOCK at a time: 4 MiB, what
waitress read at once here too, so a fast reader costs as few reads and sends as before. The
price: a pull whose client is slower than the loop holds up to BLOCK between writable events
(waitress held it only during each send), e.g. 32 MiB for 8 such pulls.

Each body reads into one buffer of its own, reused block after block (`readinto`), where a
`read` made a new 4 MiB bytes object each time for the allocator to hand out and take back:
one 1 GiB pull, alternating, 0.45-0.48 -> 0.40-0.42 s of server CPU (the client's reads
through http.client, 5 pulls each, 2 rounds). The buffer is as large as the blob when that is
smaller than BLOCK, and lives as long as the body.

It is still a ReadOnlyFileBasedBuffer, so waitress hands it to the channel as it would its own
file wrapper (waitress/task.py). The application never sees it: a resource answers with the
seam's FileBody (app/edge/file_body.py), which Falcon passes through as the iterable, and
`sending_file_bodies` turns it into a BlobBody on its way out to waitress.
"""

from __future__ import annotations

from typing import BinaryIO

from waitress.buffers import ReadOnlyFileBasedBuffer

from app.edge.file_body import FileBody

BLOCK = 4 * 1024 * 1024


def sending_file_bodies(app):
    """The WSGI application `app`, with its FileBody answers sent as BlobBody."""

    def application(environ, start_response):
        body = app(environ, start_response)
        if type(body) is FileBody:
            return BlobBody(body.file, body.length)
        return body

    return application


class BlobBody(ReadOnlyFileBasedBuffer):
    def __init__(self, file: BinaryIO, length: int) -> None:
        super().__init__(file, BLOCK)
        self._pending = memoryview(b"")  # read from the file, not yet sent
        self._block: memoryview | None = None  # what each block is read into, made at the first
        self.remain = length  # waitress's prepare() sets it again from the file and its length

    def get(self, numbytes: int = -1, skip: bool = False):
        if not self._pending:
            want = self.remain if numbytes < 0 else min(numbytes, self.remain)
            self._pending = self._read(min(want, BLOCK))
            if not self._pending:
                return b""
        chunk = self._pending if numbytes < 0 else self._pending[:numbytes]
        if skip:
            self.skip(len(chunk))
        return chunk

    def _read(self, size: int) -> memoryview:
        readinto = getattr(self.file, "readinto", None)
        if readinto is None:  # a store's reader with `read` only (the BlobReader protocol)
            return memoryview(self.file.read(size))
        if self._block is None:
            self._block = memoryview(bytearray(min(self.remain, BLOCK)))
        return self._block[: readinto(self._block[:size]) or 0]

    def skip(self, numbytes: int, allow_prune: bool = False) -> None:
        if numbytes > len(self._pending):
            raise ValueError(f"cannot skip {numbytes} bytes of {len(self._pending)} read")
        self._pending = self._pending[numbytes:]
        self.remain -= numbytes

    def __next__(self) -> bytes:  # another WSGI server iterating: stop at the length too
        data = self.file.read(min(BLOCK, self.remain)) if self.remain > 0 else b""
        if not data:
            raise StopIteration
        self.remain -= len(data)
        return data

    next = __next__

    def close(self) -> None:
        self._pending = memoryview(b"")
        self._block = None
        super().close()
