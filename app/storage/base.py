"""The BlobStore interface.

Blobs are content-addressed under a per-registry key prefix, so registries never share bytes
and deleting a registry is deleting a prefix. Uploads are append-only files addressed by their
session id; `commit_upload` makes one visible as a blob atomically, or not at all.

A store that cannot be reached (after its own retries) raises `StorageUnavailable`, which the
data plane renders as a 503 OCI error rather than a traceback.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from types import TracebackType
from typing import Protocol, Self

from app.spec.errors import RegistryError


class StorageUnavailable(RegistryError):
    """The blob store failed (5xx, 429, connection errors) and kept failing through retries."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__("UNAVAILABLE", message, headers={"Retry-After": str(retry_after)})


class BlobReader(Protocol):
    """What `open_blob` hands back: the blob's bytes as a readable, seekable file (a store's
    own reader need not be a whole `BinaryIO`)."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def seekable(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> object: ...


class UploadWriter(Protocol):
    """What `open_upload_for_append` hands back: a file to write an upload's next bytes to,
    durable once closed (leaving the `with` block on an exception may drop them)."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> object: ...


class LockTimeout(Exception):
    """A lock of the store's not had within the time asked."""


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""

    @abc.abstractmethod
    def open_upload_for_append(self, upload_id: str, offset: int) -> UploadWriter:
        """A writable file positioned at `offset`; anything past it (a torn write) is dropped."""

    def adopt_upload(self, upload_id: str, source: str) -> bool:
        """Take the file at `source` over as the whole content of an empty upload, without
        copying it; False when this store cannot (the caller then streams the bytes in)."""
        return False

    supports_append_file = False

    def append_file(self, upload_id: str, offset: int, source: str, length: int) -> None:
        """Append the `length` bytes of the file at `source` (on the store's own filesystem) to
        an upload whose committed size is `offset`, without passing them through Python: for
        stores with `supports_append_file`."""
        raise NotImplementedError

    @property
    def spool_dir(self):
        """A directory on the store's own filesystem for request bodies, or None."""
        return None

    @abc.abstractmethod
    def read_upload(self, upload_id: str, length: int, start: int = 0) -> Iterator[bytes]:
        """Bytes `start` up to `length` (exclusive) of an upload, in chunks."""

    def discard_past(self, upload_id: str, size: int) -> None:
        """Drop an upload's bytes past `size` now (a write that failed part-way, e.g. on a full
        disk), giving their space back. Nothing by default: the next append drops them anyway."""

    @abc.abstractmethod
    def delete_upload(self, upload_id: str) -> None:
        """Remove an upload's bytes; no error when absent."""

    def upload_lock(self, upload_id: str, timeout: float | None = None) -> AbstractContextManager:
        """Held while a request writes to an upload, excluding other processes on this machine
        (SQLite deployments with `--workers`; PostgreSQL deployments lock the upload's row),
        waited for at most `timeout` seconds (None: as long as it takes), then LockTimeout.
        Nothing by default."""
        return contextlib.nullcontext()

    def prepare_commit(self, upload_id: str, size: int) -> None:
        """Make the first `size` bytes of an upload durable before `commit_upload`, which then
        only has to publish them (called outside any lock). Nothing to do by default."""

    @abc.abstractmethod
    def commit_upload(self, upload_id: str, key: str, size: int) -> None:
        """Make the first `size` bytes of an upload the blob at `key`, atomically."""

    @abc.abstractmethod
    def blob_size(self, key: str) -> int | None:
        """The size of the blob at `key`, or None when absent."""

    @abc.abstractmethod
    def open_blob(self, key: str) -> BlobReader:
        """A readable file for the blob at `key` (FileNotFoundError when absent)."""

    @abc.abstractmethod
    def delete_blob(self, key: str) -> None:
        """Remove a blob; no error when absent."""

    @abc.abstractmethod
    def list_blobs(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every blob whose key starts with `prefix` (e.g. `"12/"`: all of
        registry 12's blobs), in key order. Uploads in progress are not listed."""

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        """A URL a client may GET the blob at `key` from directly until `expires` has passed,
        or None when this store cannot sign one (the service then streams the blob)."""
        return None

    @abc.abstractmethod
    def healthy(self) -> bool:
        """Whether the store can be read and written now (for readiness probes)."""


def blob_key(registry_id: int, digest: str) -> str:
    """Where a registry's blob lives: `<registry id>/<algorithm>/<2 hex>/<hex>`.

    `digest` must already be validated (app.spec.digests.parse), which is what keeps this key
    free of path tricks.
    """
    algorithm, encoded = digest.split(":", 1)
    return f"{registry_id}/{algorithm}/{encoded[:2]}/{encoded}"
