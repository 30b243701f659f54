"""Blob stores: where blob bytes and in-progress uploads live."""

from __future__ import annotations

from app.storage.base import BlobStore


def open_store(url: str) -> BlobStore:
    """The blob store for a `BERTH_STORAGE_URL`: `file:///path` or `gs://bucket[/prefix]`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "file":
        from app.storage.filesystem import FilesystemStore

        path = url.split("://", 1)[1]
        if not path:
            raise SystemExit(f"BERTH_STORAGE_URL {url!r} names no directory: use file:///path")
        return FilesystemStore(path)
    if scheme == "gs":
        from app.storage.gcs import open_gcs

        return open_gcs(url)
    raise SystemExit(f"unsupported BERTH_STORAGE_URL {url!r}: use file:///path or gs://bucket[/prefix]")
