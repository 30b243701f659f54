"""The spooled request body: what the HTTP server (app/server/spool.py) hands the application
when it has received a request body whole into a file, and how the upload routes ask for it.

The server spools large bodies into files on the blob store's own filesystem and may hash an
upload's body while it arrives; the upload service then takes the file over (a hard link or a
copy in the kernel) instead of reading the body through the WSGI stream. This module is the
whole of what the application knows about that: it never names the server, so the server (and
its WSGI library) can change behind it.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Protocol, cast


class HashInProgress(Protocol):
    """An upload's hash computed while its body arrived (app/server/spool.py's BodyHash)."""

    upload_id: str | None

    def result(self, length: int) -> tuple[int, object] | None:
        """`(offset the hash started at, hasher)` once the body's `length` bytes are hashed;
        None when there is none."""


class SpooledBodyFile:
    """What the server's spool files are: a body received whole into a file of the server's
    spool directory (on the blob store's filesystem), with the hash computed while it arrived
    (or None), and `storage_full` when the disk filled meanwhile and the bytes were dropped."""

    body_hash: HashInProgress | None = None
    storage_full = False


class Spooled:
    """A request body the server spooled whole to a file: its path, and its hash if one was
    computed while it arrived."""

    __slots__ = ("path", "body_hash")

    def __init__(self, path: str, body_hash: HashInProgress | None) -> None:
        self.path, self.body_hash = path, body_hash

    def hashed(self, length: int, upload_id: str, offset: int):
        """The hasher of an upload's first `offset` bytes and then this body, when the hash
        computed while it arrived is that one; else None."""
        if self.body_hash is None:
            return None
        outcome = self.body_hash.result(length)
        if outcome is None:
            return None
        start, hasher = outcome
        if start != offset or (start and self.body_hash.upload_id != upload_id):
            return None
        return hasher


def spooled_file(stream, length: int | None) -> Spooled | None:
    """The spool file behind a request body stream, when the file holds exactly the `length`
    unread bytes of the body from its start; None otherwise (read the stream instead)."""
    if not length:
        return None
    if getattr(stream, "_bytes_remaining", length) != length:  # Falcon's BoundedStream, unread
        return None
    raw = getattr(stream, "stream", stream)
    if not isinstance(raw, SpooledBodyFile):  # in memory, or a server that does not spool
        return None
    name = getattr(raw, "name", None)
    if not isinstance(name, str):
        return None
    file = cast(BinaryIO, raw)  # a SpooledBodyFile with a name is a file (the server's SpoolFile)
    try:
        if file.tell() != 0 or os.fstat(file.fileno()).st_size != length:
            return None
    except (OSError, ValueError):
        return None
    return Spooled(name, raw.body_hash)


def body_lost(stream) -> bool:
    """Whether the request body behind `stream` (Falcon's stream or the server's file) was
    dropped because the disk was full while it arrived."""
    return bool(getattr(getattr(stream, "stream", stream), "storage_full", False))
