"""The Google Cloud Storage blob store (`gs://bucket[/prefix]`).

Layout under the prefix:
    blobs/<registry id>/<algorithm>/<2 hex>/<hex>   one object per blob (per registry)
    uploads/<upload id>/started                      an empty marker: the upload exists
    uploads/<upload id>/<start offset, 20 digits>     one object per appended chunk

GCS objects are immutable, so an upload is a chain of part objects. Each append writes its
bytes into a new part: up to 8 MiB in one request, beyond that through a GCS resumable upload
session fed 8 MiB at a time (never the whole body in memory). A part becomes visible only when
its upload completes, so a crashed or cut-off append leaves no part at all, or a whole part past
the committed offset, which the next `open_upload_for_append` deletes. Committing composes the
parts (32 sources per compose call, chained for more) into the blob's object, atomically, then
deletes the parts. The committed
offset lives in the database, so an upload started on one replica continues on another.

Every call is retried on 429/5xx and connection errors with exponential backoff (google's retry
support); when the store keeps failing past the retry deadline, `StorageUnavailable` is raised.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.fileio import BlobWriter
from google.cloud.storage.retry import DEFAULT_RETRY

try:  # google-resumable-media (storage < 3) or the vendored copy (storage >= 3)
    from google.cloud.storage.exceptions import InvalidResponse
except ImportError:  # pragma: no cover - older client library
    from google.resumable_media.common import InvalidResponse

from app.storage.base import BlobStore, StorageUnavailable

log = logging.getLogger("berth.storage.gcs")

# Resumable-upload chunk and ranged-read window. Uploads need multiples of 256 KiB.
CHUNK = 8 * 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
COMPOSE_LIMIT = 32
_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_KEY = re.compile(r"^[0-9]+/[a-z0-9]+/[0-9a-f]{2}/[0-9a-f]+\Z")
_KEY_PREFIX = re.compile(r"^[0-9a-z/]*\Z")
_PART = re.compile(r"^[0-9]{20}\Z")
MARKER = "started"
_SIGNING_RETRY_AFTER = 300.0  # seconds before trying again to sign after signing failed


def _unavailable(exc: Exception) -> bool:
    if isinstance(
        exc,
        (
            gexc.TooManyRequests,
            gexc.ServerError,
            gexc.RetryError,
            requests.ConnectionError,
            requests.Timeout,
            auth_exceptions.TransportError,
            ConnectionError,
            TimeoutError,
        ),
    ):
        return True
    if isinstance(exc, InvalidResponse):  # resumable-media errors carry the HTTP response
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status is None or status == 429 or status >= 500
    return False


def _translated(method):
    """Run a store call; a failure that outlasted the retries becomes StorageUnavailable."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if _unavailable(exc):
                raise StorageUnavailable(f"blob store unavailable: {type(exc).__name__}: {str(exc)[:200]}") from exc
            raise

    return wrapper


class GCSStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: storage.Client | None = None,
        retry_timeout: float = 30.0,
        signing_credentials=None,
    ) -> None:
        if not bucket:
            raise ValueError("a GCS bucket name is required")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or _client()
        self.bucket = self.client.bucket(bucket)
        # google's retry: exponential backoff (1 s doubling, capped) on 429, 5xx and connection
        # errors, for at most `retry_timeout` seconds per call.
        with_timeout = getattr(DEFAULT_RETRY, "with_timeout", None) or DEFAULT_RETRY.with_deadline  # api-core < 2.17
        self.retry: Retry = with_timeout(retry_timeout)
        self._signing_credentials = signing_credentials
        self._signing_failed_at: float | None = None
        self._signing_lock = threading.Lock()

    # -- names ---------------------------------------------------------------------------------

    def _blob_name(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"bad blob key {key!r}")
        return f"{self.prefix}blobs/{key}"

    def _upload_dir(self, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"bad upload id {upload_id!r}")
        return f"{self.prefix}uploads/{upload_id}/"

    def _parts(self, upload_id: str) -> tuple[bool, list[storage.Blob]]:
        """(whether the upload exists, its part objects in offset order)."""
        directory = self._upload_dir(upload_id)
        exists, parts = False, []
        for obj in self.client.list_blobs(self.bucket, prefix=directory, retry=self.retry):
            leaf = obj.name[len(directory) :]
            if leaf == MARKER:
                exists = True
            elif _PART.fullmatch(leaf):
                exists = True
                parts.append(obj)
        parts.sort(key=lambda o: o.name)
        return exists, parts

    def _chain(self, upload_id: str, length: int) -> list[tuple[storage.Blob, int]]:
        """The parts holding the first `length` bytes, each with how many of its bytes count."""
        exists, parts = self._parts(upload_id)
        if not exists:
            raise FileNotFoundError(f"upload {upload_id} not found")
        chain, position = [], 0
        for part in parts:
            if position >= length:
                break
            start = int(part.name.rsplit("/", 1)[1])
            if start != position or not part.size:
                continue  # a leftover that the next append drops; not part of the chain
            take = min(part.size, length - position)
            chain.append((part, take))
            position += take
        if position < length:
            raise OSError(f"upload {upload_id} is shorter than {length} bytes")
        return chain

    def _delete_quietly(self, obj: storage.Blob) -> None:
        try:
            obj.delete(retry=self.retry)
        except gexc.NotFound:
            pass

    # -- uploads -------------------------------------------------------------------------------

    @_translated
    def create_upload(self, upload_id: str) -> None:
        self.bucket.blob(self._upload_dir(upload_id) + MARKER).upload_from_string(
            b"", content_type="application/octet-stream", retry=self.retry
        )

    @_translated
    def open_upload_for_append(self, upload_id: str, offset: int) -> _PartWriter:
        exists, parts = self._parts(upload_id)
        if not exists:
            raise FileNotFoundError(f"upload {upload_id} not found")
        for part in parts:
            start = int(part.name.rsplit("/", 1)[1])
            if start >= offset:
                self._delete_quietly(part)  # a torn or unacknowledged write
            elif start + (part.size or 0) > offset:
                # Only a caller rewinding into an acknowledged chunk gets here (committed
                # offsets only grow, and each part ends at one): keep the part's head.
                self._copy_prefix(part, offset - start, self.bucket.blob(part.name, chunk_size=CHUNK))
        name = f"{self._upload_dir(upload_id)}{offset:020d}"
        return _PartWriter(self.bucket.blob(name, chunk_size=CHUNK), self.retry)

    def _copy_prefix(self, source: storage.Blob, length: int, target: storage.Blob) -> None:
        writer = _PartWriter(target, self.retry)
        with writer:
            for chunk in self._read_range(source, 0, length):
                writer.write(chunk)

    def _read_range(self, obj: storage.Blob, start: int, length: int) -> Iterator[bytes]:
        position, end = start, start + length
        while position < end:
            stop = min(position + READ_CHUNK, end)
            data = obj.download_as_bytes(start=position, end=stop - 1, checksum=None, retry=self.retry)
            if not data:
                raise OSError(f"{obj.name} ended at {position}, expected {end} bytes")
            position += len(data)
            yield data

    def read_upload(self, upload_id: str, length: int, start: int = 0) -> Iterator[bytes]:
        if length <= 0:
            self._translated_chain(upload_id, 0)
            return
        position = 0  # where the current part begins in the upload
        for part, take in self._translated_chain(upload_id, length):
            if position + take > start:
                skip = max(start - position, 0)
                yield from _translated_iter(self._read_range(part, skip, take - skip))
            position += take

    @_translated
    def _translated_chain(self, upload_id: str, length: int):
        return self._chain(upload_id, length)

    @_translated
    def delete_upload(self, upload_id: str) -> None:
        directory = self._upload_dir(upload_id)
        for obj in self.client.list_blobs(self.bucket, prefix=directory, retry=self.retry):
            self._delete_quietly(obj)

    @_translated
    def commit_upload(self, upload_id: str, key: str, size: int) -> None:
        target = self.bucket.blob(self._blob_name(key))
        chain = self._chain(upload_id, size)
        directory = self._upload_dir(upload_id)
        sources: list[storage.Blob] = []
        for part, take in chain:
            if take < part.size:  # only the last part can overshoot `size`
                tail = self.bucket.blob(f"{directory}tail", chunk_size=CHUNK)
                self._copy_prefix(part, take, tail)
                part = tail
            sources.append(part)
        if not sources:
            target.upload_from_string(b"", content_type="application/octet-stream", retry=self.retry)
        else:
            # Chain composes 32 at a time; the last compose writes the blob, atomically.
            round_ = 0
            while len(sources) > COMPOSE_LIMIT:
                grouped = []
                for n in range(0, len(sources), COMPOSE_LIMIT):
                    group = sources[n : n + COMPOSE_LIMIT]
                    if len(group) == 1:
                        grouped.append(group[0])
                        continue
                    step = self.bucket.blob(f"{directory}compose-{round_:03d}-{n // COMPOSE_LIMIT:06d}")
                    step.content_type = "application/octet-stream"
                    step.compose(group, retry=self.retry)
                    grouped.append(step)
                sources, round_ = grouped, round_ + 1
            target.content_type = "application/octet-stream"
            target.compose(sources, retry=self.retry)
        self.delete_upload(upload_id)

    # -- blobs ---------------------------------------------------------------------------------

    @_translated
    def blob_size(self, key: str) -> int | None:
        obj = self.bucket.get_blob(self._blob_name(key), retry=self.retry)
        return None if obj is None else obj.size

    @_translated
    def open_blob(self, key: str) -> _Reader:
        obj = self.bucket.get_blob(self._blob_name(key), retry=self.retry)
        if obj is None:
            raise FileNotFoundError(key)
        # Ranged reads of READ_CHUNK bytes at a time, pinned to this generation.
        return _Reader(obj.open("rb", chunk_size=READ_CHUNK, retry=self.retry))

    @_translated
    def delete_blob(self, key: str) -> None:
        self._delete_quietly(self.bucket.blob(self._blob_name(key)))

    def list_blobs(self, prefix: str) -> Iterator[tuple[str, int]]:
        if not _KEY_PREFIX.fullmatch(prefix) or "//" in prefix or prefix.startswith("/"):
            raise ValueError(f"bad key prefix {prefix!r}")
        base = f"{self.prefix}blobs/"
        listing = self.client.list_blobs(self.bucket, prefix=base + prefix, retry=self.retry)
        for obj in _translated_iter(iter(listing)):
            key = obj.name[len(base) :]
            if _KEY.fullmatch(key):
                yield key, obj.size or 0

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        """A V4 signed GET URL; None when no credentials here can sign (then Berth streams)."""
        name = self._blob_name(key)
        with self._signing_lock:
            failed = self._signing_failed_at
        if failed is not None and time.monotonic() - failed < _SIGNING_RETRY_AFTER:
            return None
        try:
            return self._sign(name, expires)
        except Exception as exc:  # noqa: BLE001 - any signing failure means: stream instead
            with self._signing_lock:
                if self._signing_failed_at is None:
                    log.warning(
                        "cannot sign GCS URLs (%s: %s); blobs are streamed by the service", type(exc).__name__, exc
                    )
                self._signing_failed_at = time.monotonic()
            return None

    def _sign(self, name: str, expires: timedelta) -> str:
        blob = self.bucket.blob(name)
        credentials = self._signing_credentials or self.client._credentials
        if getattr(credentials, "signer", None) is not None and getattr(credentials, "signer_email", None):
            return blob.generate_signed_url(version="v4", expiration=expires, method="GET", credentials=credentials)
        # Credentials without a private key (GKE workload identity, Compute Engine): sign
        # through the IAM signBlob API as the service account they stand for.
        if _emulated() or not hasattr(credentials, "service_account_email"):
            raise RuntimeError("credentials cannot sign (no private key, no service account)")
        if not credentials.valid:  # also resolves the email of metadata-server credentials
            import google.auth.transport.requests

            credentials.refresh(google.auth.transport.requests.Request())
        return blob.generate_signed_url(
            version="v4",
            expiration=expires,
            method="GET",
            service_account_email=credentials.service_account_email,
            access_token=credentials.token,
        )

    def healthy(self) -> bool:
        try:
            return self.bucket.exists(retry=None, timeout=5)
        except Exception:  # noqa: BLE001 - unreachable means not ready
            return False


def _translated_iter(iterator: Iterator) -> Iterator:
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            if _unavailable(exc):
                raise StorageUnavailable(f"blob store unavailable: {type(exc).__name__}") from exc
            raise
        yield item


class _PartWriter:
    """One appended chunk, written as one object that appears whole when closed (and never,
    when the write fails). Up to `CHUNK` bytes are buffered and sent in one request; past that
    the bytes stream through a GCS resumable upload, `CHUNK` at a time, so memory stays bounded
    whatever the size. Nothing is created for an empty chunk. flush() is a no-op: bytes are
    durable only once the part is closed."""

    def __init__(self, blob: storage.Blob, retry: Retry) -> None:
        self._blob = blob
        self._retry = retry
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._writer: BlobWriter | None = None
        self.closed = False

    def write(self, data: bytes) -> int:
        if not data:
            return 0
        if self._writer is None and self._pending_size + len(data) <= CHUNK:
            self._pending.append(bytes(data))
            self._pending_size += len(data)
            return len(data)
        if self._writer is None:
            self._writer = self._blob.open(
                "wb", chunk_size=CHUNK, ignore_flush=True, retry=self._retry, content_type="application/octet-stream"
            )
            pending, self._pending, self._pending_size = self._pending, [], 0
            pending.reverse()
            while pending:  # hand the buffered bytes over without holding a second copy
                _translated(self._writer.write)(pending.pop())
        return _translated(self._writer.write)(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            _translated(self._writer.close)()
        elif self._pending:
            data, self._pending = b"".join(self._pending), []
            # One request (a multipart upload) for a small chunk.
            small = self._blob.bucket.blob(self._blob.name)
            _translated(small.upload_from_string)(data, content_type="application/octet-stream", retry=self._retry)

    def abort(self) -> None:
        self.closed = True
        self._pending = []
        if self._writer is not None:
            try:
                self._writer.terminate()
            except Exception:  # noqa: BLE001 - the session expires on its own
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.close()
        return False


class _Reader:
    """A readable, seekable blob (ranged GETs) whose failures surface as StorageUnavailable."""

    def __init__(self, reader) -> None:
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        return _translated(self._reader.read)(size)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._reader.seek(pos, whence)

    def tell(self) -> int:
        return self._reader.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _emulated() -> bool:
    """Whether the client talks to an emulator (the Google client's own switch)."""
    return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def _client() -> storage.Client:
    try:
        return storage.Client()
    except auth_exceptions.DefaultCredentialsError as exc:
        raise SystemExit(
            f"gs:// storage needs Google credentials (GOOGLE_APPLICATION_CREDENTIALS or workload identity): {exc}"
        ) from None


def _emulator_signing_credentials():
    """Against the emulator the client is anonymous; a service-account key file named by
    GOOGLE_APPLICATION_CREDENTIALS (if any) still signs URLs, locally, without token calls."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        return None
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_file(path)
    except (ValueError, OSError, KeyError) as exc:
        log.warning(
            "GOOGLE_APPLICATION_CREDENTIALS %s is not a service-account key (%s): URLs are not signed", path, exc
        )
        return None


def open_gcs(url: str) -> GCSStore:
    """`gs://bucket[/prefix][?retry_timeout=seconds]`."""
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path
    if not bucket:
        raise SystemExit(f"BERTH_STORAGE_URL {url!r} names no bucket: use gs://bucket[/prefix]")
    query = parse_qs(parts.query)
    unknown = set(query) - {"retry_timeout"}
    if unknown:
        raise SystemExit(f"BERTH_STORAGE_URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        retry_timeout = float(query.get("retry_timeout", ["30"])[0])
    except ValueError:
        raise SystemExit(f"BERTH_STORAGE_URL {url!r}: retry_timeout must be a number of seconds") from None
    client = _client()
    signing = _emulator_signing_credentials() if _emulated() else None
    store = GCSStore(bucket, prefix, client=client, retry_timeout=retry_timeout, signing_credentials=signing)
    try:
        exists = store.bucket.exists(retry=None, timeout=10)
    except Exception as exc:  # noqa: BLE001 - unreachable now: start anyway, /readyz reports it
        log.warning("cannot reach GCS bucket %s at start (%s); continuing", bucket, type(exc).__name__)
    else:
        if not exists:
            raise SystemExit(f"GCS bucket {bucket!r} (from BERTH_STORAGE_URL) does not exist or is not visible")
    return store
