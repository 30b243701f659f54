"""Blob stores: where blob bytes and in-progress uploads live."""

from __future__ import annotations

from app.storage.base import BlobStore


def open_store(url: str) -> BlobStore:
    """The blob store for a `BERTH_STORAGE_URL`."""
    if url.startswith("file://"):
        from app.storage.filesystem import FilesystemStore

        return FilesystemStore(url[len("file://"):])
    raise SystemExit(
        f"unsupported BERTH_STORAGE_URL {url!r}: use file:///path (GCS arrives with issue 7)"
    )
