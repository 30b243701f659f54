"""Where waitress spools request bodies, and how a spooled body becomes an upload without a copy.

waitress reads a whole request body before the application runs, spilling anything past
`inbuf_overflow` into a temporary file. By default that file is anonymous and elsewhere, so a
pushed layer was written twice: once by waitress, once more into the blob store. Spooling into a
named file on the blob store's own filesystem lets the upload take the file over with a hard
link instead (the bytes are still read once, to hash them, and fsynced before the blob is
acknowledged).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from waitress.buffers import TempfileBasedBuffer

_spool_dir: Path | None = None


STALE_AFTER = 24 * 3600  # seconds; another process sharing the directory may still be writing newer ones


def install(spool_dir: Path) -> None:
    """Make waitress spool bodies into `spool_dir`, after removing day-old leftovers (bodies of
    processes that were killed: a live process unlinks its own)."""
    global _spool_dir
    spool_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in spool_dir.glob("body-*"):
        try:
            if now - stale.stat().st_mtime > STALE_AFTER:
                stale.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    _spool_dir = spool_dir.resolve()

    def newfile(self):
        return tempfile.NamedTemporaryFile("w+b", dir=_spool_dir, prefix="body-", delete=True)

    TempfileBasedBuffer.newfile = newfile


def spooled_file(stream, length: int | None) -> str | None:
    """The path of the spool file behind a request body stream, when the file holds exactly the
    `length` unread bytes of the body from its start; None otherwise (read the stream instead)."""
    if _spool_dir is None or not length:
        return None
    if getattr(stream, "_bytes_remaining", length) != length:  # Falcon's BoundedStream, unread
        return None
    raw = getattr(stream, "stream", stream)
    name = getattr(raw, "name", None)
    if not isinstance(name, str) or Path(name).parent != _spool_dir:
        return None
    try:
        if raw.tell() != 0 or os.fstat(raw.fileno()).st_size != length:
            return None
    except (OSError, ValueError):
        return None
    return name
