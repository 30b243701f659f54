"""One suite for every BlobStore driver: the filesystem, and GCS through the real
google-cloud-storage client against gcp-storage-emulator on loopback.

The GCS-only tests at the end inject 5xx/429 between the client and the emulator: transient
failures are retried with backoff, persistent ones surface as StorageUnavailable."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import tracemalloc
import uuid
from datetime import timedelta

import pytest
import requests

from app.storage import open_store
from app.storage.base import StorageUnavailable, blob_key
from tests.support.gcs_emulator import FaultyProxy, gcs_credentials, gcs_emulator  # noqa: F401 - fixtures

MiB = 1024 * 1024


def driver_url(kind: str, request, tmp_path, monkeypatch) -> str:
    """Where a store of this driver lives for one test; two stores opened on it are two replicas."""
    if kind == "filesystem":
        return f"file://{tmp_path / 'storage'}"
    emulator = request.getfixturevalue("gcs_emulator")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(request.getfixturevalue("gcs_credentials")))
    # Every test gets a prefix of its own in the shared bucket, as a deployment's gs://bucket/prefix.
    return f"gs://{emulator.bucket}/t-{secrets.token_hex(6)}"


@pytest.fixture(params=["filesystem", "gcs"])
def store(request, tmp_path, monkeypatch):
    s = open_store(driver_url(request.param, request, tmp_path, monkeypatch))
    s.kind = request.param
    return s


@pytest.fixture(params=["filesystem", "gcs"])
def store_pair(request, tmp_path, monkeypatch):
    url = driver_url(request.param, request, tmp_path, monkeypatch)
    return open_store(url), open_store(url)


def new_id() -> str:
    return str(uuid.uuid4())


def key_for(data: bytes, registry: int = 1) -> str:
    return blob_key(registry, "sha256:" + hashlib.sha256(data).hexdigest())


def push(store, data: bytes, registry: int = 1, chunks: int = 1) -> str:
    upload = new_id()
    store.create_upload(upload)
    step = max(1, -(-len(data) // chunks))
    offset = 0
    while offset < len(data) or offset == 0:
        with store.open_upload_for_append(upload, offset) as f:
            f.write(data[offset : offset + step])
            f.flush()
        offset += step
        if not data:
            break
    key = key_for(data, registry)
    store.commit_upload(upload, key, len(data))
    return key


def read_all(store, key: str) -> bytes:
    with store.open_blob(key) as f:
        return f.read()


# -- uploads -----------------------------------------------------------------------------------


def test_write_append_read_commit(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"hello ")
        f.flush()
    with store.open_upload_for_append(upload, 6) as f:
        f.write(b"wor")
        f.write(b"ld")
    assert b"".join(store.read_upload(upload, 11)) == b"hello world"
    assert b"".join(store.read_upload(upload, 5)) == b"hello"
    # From an offset: across the boundary of the two appends, inside one, and empty.
    assert b"".join(store.read_upload(upload, 11, 4)) == b"o world"
    assert b"".join(store.read_upload(upload, 11, 8)) == b"rld"
    assert b"".join(store.read_upload(upload, 11, 11)) == b""
    key = key_for(b"hello world")
    assert store.blob_size(key) is None
    store.commit_upload(upload, key, 11)
    assert store.blob_size(key) == 11
    assert read_all(store, key) == b"hello world"
    # The upload is gone once committed.
    with pytest.raises(FileNotFoundError):
        b"".join(store.read_upload(upload, 1))


def test_append_drops_a_torn_tail(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"hello world, torn tail")
    with store.open_upload_for_append(upload, 5) as f:  # only 5 bytes were acknowledged
        f.write(b"!")
    assert b"".join(store.read_upload(upload, 6)) == b"hello!"
    with pytest.raises(IOError):
        b"".join(store.read_upload(upload, 7))
    key = key_for(b"hello!")
    store.commit_upload(upload, key, 6)
    assert read_all(store, key) == b"hello!"


def test_an_append_cut_off_by_an_error_leaves_nothing_past_the_offset(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"acknowledged")
    with pytest.raises(RuntimeError):
        with store.open_upload_for_append(upload, 12) as f:
            f.write(b"half a chunk")
            raise RuntimeError("client went away")
    with store.open_upload_for_append(upload, 12) as f:
        f.write(b"+retry")
    assert b"".join(store.read_upload(upload, 18)) == b"acknowledged+retry"


def test_commit_takes_only_the_first_size_bytes(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"abc")
    with store.open_upload_for_append(upload, 3) as f:
        f.write(b"defgh")
    key = key_for(b"abcde")
    store.commit_upload(upload, key, 5)
    assert read_all(store, key) == b"abcde"


def test_empty_upload_and_empty_blob(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"")
    assert b"".join(store.read_upload(upload, 0)) == b""
    key = key_for(b"")
    store.commit_upload(upload, key, 0)
    assert store.blob_size(key) == 0
    assert read_all(store, key) == b""


def test_many_chunks_commit_in_order(store):
    """More chunks than one GCS compose takes (32): composes are chained."""
    chunks = [f"chunk {i:03d};".encode() * (i % 5 + 1) for i in range(70)]
    upload = new_id()
    store.create_upload(upload)
    offset = 0
    for chunk in chunks:
        with store.open_upload_for_append(upload, offset) as f:
            f.write(chunk)
        offset += len(chunk)
    data = b"".join(chunks)
    assert b"".join(store.read_upload(upload, offset)) == data
    key = key_for(data)
    store.commit_upload(upload, key, offset)
    assert read_all(store, key) == data


def test_cancel_removes_the_upload(store):
    upload = new_id()
    store.create_upload(upload)
    with store.open_upload_for_append(upload, 0) as f:
        f.write(b"to be cancelled")
    store.delete_upload(upload)
    store.delete_upload(upload)  # twice: no error
    with pytest.raises(FileNotFoundError):
        b"".join(store.read_upload(upload, 1))
    with pytest.raises(FileNotFoundError):
        store.open_upload_for_append(upload, 0)
    assert list(store.list_blobs("")) == []


def test_an_upload_continues_on_another_instance(store_pair):
    first, second = store_pair
    upload = new_id()
    first.create_upload(upload)
    with first.open_upload_for_append(upload, 0) as f:
        f.write(b"started on one replica, ")
    with second.open_upload_for_append(upload, 24) as f:
        f.write(b"finished on another")
    data = b"started on one replica, finished on another"
    assert (
        hashlib.sha256(b"".join(second.read_upload(upload, len(data)))).hexdigest() == hashlib.sha256(data).hexdigest()
    )
    key = key_for(data)
    second.commit_upload(upload, key, len(data))
    assert read_all(first, key) == data


# -- blobs -------------------------------------------------------------------------------------


def test_missing_objects(store):
    key = key_for(b"never stored")
    assert store.blob_size(key) is None
    with pytest.raises(FileNotFoundError):
        store.open_blob(key)
    store.delete_blob(key)  # no error
    missing = new_id()
    with pytest.raises(FileNotFoundError):
        b"".join(store.read_upload(missing, 0))
    with pytest.raises(FileNotFoundError):
        store.open_upload_for_append(missing, 0)
    store.delete_upload(missing)  # no error


def test_ranges(store):
    data = bytes(range(256)) * 64
    key = push(store, data, chunks=3)
    with store.open_blob(key) as f:
        f.seek(1000)
        assert f.read(24) == data[1000:1024]
        assert f.read(10) == data[1024:1034]
        f.seek(len(data) - 5)
        assert f.read() == data[-5:]
        assert f.read(10) == b""


def test_list_and_delete_per_registry(store):
    mine = [push(store, f"registry 1 blob {i}".encode(), registry=1) for i in range(3)]
    other = push(store, b"registry 12 blob", registry=12)
    upload = new_id()
    store.create_upload(upload)  # in progress: never listed
    listed = dict(store.list_blobs("1/"))
    assert set(listed) == set(mine)
    assert listed[mine[0]] == len(b"registry 1 blob 0")
    assert dict(store.list_blobs("12/")) == {other: len(b"registry 12 blob")}
    assert [k for k, _ in store.list_blobs("")] == sorted([*mine, other])
    # Deleting a registry: its blobs only.
    for key, _ in list(store.list_blobs("1/")):
        store.delete_blob(key)
    assert list(store.list_blobs("1/")) == []
    assert store.blob_size(mine[0]) is None
    assert store.blob_size(other) == len(b"registry 12 blob")
    assert read_all(store, other) == b"registry 12 blob"


def test_same_digest_in_two_registries_is_two_blobs(store):
    a = push(store, b"shared bytes", registry=3)
    b = push(store, b"shared bytes", registry=4)
    assert a != b
    store.delete_blob(a)
    assert store.blob_size(a) is None and read_all(store, b) == b"shared bytes"


def test_bad_ids_and_keys_are_refused(store):
    for bad in ("../x", "a" * 36):
        with pytest.raises(ValueError):
            store.create_upload(bad)
    for key in ("1/sha256/../../x", "../1/sha256/ab/abcd", "1/sha256/ab/../../../etc"):
        with pytest.raises(ValueError):
            store.open_blob(key)
    with pytest.raises(ValueError):
        list(store.list_blobs("../"))


def test_concurrent_writers(store):
    """Eight uploads at once, two of them of the same bytes (the same key): all complete."""
    payloads = [os.urandom(300_000 + i) for i in range(6)] + [b"same bytes" * 1000] * 2
    errors, keys = [], [None] * len(payloads)

    def work(i):
        try:
            keys[i] = push(store, payloads[i], chunks=4)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for key, data in zip(keys, payloads, strict=True):
        assert store.blob_size(key) == len(data)
        assert read_all(store, key) == data


def test_large_object_streams_without_holding_it(store):
    """48 MiB in 1 MiB writes and reads: the driver never holds the object whole."""
    size, chunk = 48 * MiB, MiB
    upload = new_id()
    store.create_upload(upload)
    written = hashlib.sha256()
    tracemalloc.start()
    try:
        with store.open_upload_for_append(upload, 0) as f:
            block = os.urandom(chunk)
            for i in range(size // chunk):
                piece = hashlib.sha256(block + i.to_bytes(4, "big")).digest() * (chunk // 32)
                written.update(piece)
                f.write(piece)
        rehashed = hashlib.sha256()
        for piece in store.read_upload(upload, size):
            rehashed.update(piece)
        assert rehashed.hexdigest() == written.hexdigest()
        key = blob_key(1, "sha256:" + written.hexdigest())
        store.commit_upload(upload, key, size)
        read = hashlib.sha256()
        with store.open_blob(key) as f:
            while piece := f.read(chunk):
                read.update(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read.hexdigest() == written.hexdigest()
    assert store.blob_size(key) == size
    assert peak < 24 * MiB, f"peak {peak / MiB:.1f} MiB for a {size // MiB} MiB object"


def test_signed_urls(store):
    data = b"served straight from the store"
    key = push(store, data)
    url = store.signed_url(key, timedelta(minutes=5))
    if store.kind == "filesystem":
        assert url is None  # nothing to redirect to: the service streams
        return
    assert "X-Goog-Signature=" in url and "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url
    assert url.startswith(os.environ["STORAGE_EMULATOR_HOST"] + "/")  # the emulator, not googleapis
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == data
    ranged = requests.get(url, headers={"Range": "bytes=7-17"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[7:18]


def test_healthy(store):
    assert store.healthy()


# -- GCS only: unsigned, missing bucket, retries and outages -------------------------------------


def test_gcs_without_signing_credentials_offers_no_url(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    store = open_store(f"gs://{gcs_emulator.bucket}/unsigned-{secrets.token_hex(4)}")
    key = push(store, b"unsigned")
    assert store.signed_url(key, timedelta(minutes=5)) is None


def test_open_store_explains_bad_urls(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    with pytest.raises(SystemExit, match="does not exist"):
        open_store("gs://no-such-bucket-here/x")
    with pytest.raises(SystemExit, match="names no bucket"):
        open_store("gs:///prefix")
    with pytest.raises(SystemExit, match="unsupported BERTH_STORAGE_URL"):
        open_store("s3://bucket")


@pytest.fixture
def faulty_gcs(gcs_emulator, monkeypatch):
    """A GCS store whose every request goes through a proxy that can fail on demand."""
    proxy = FaultyProxy(gcs_emulator.port)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    store = open_store(f"gs://{gcs_emulator.bucket}/faulty-{secrets.token_hex(4)}?retry_timeout=4")
    yield store, proxy
    proxy.close()


@pytest.mark.parametrize("status", [503, 429, 500])
def test_gcs_transient_errors_are_retried(faulty_gcs, status):
    store, proxy = faulty_gcs
    data = os.urandom(20 * MiB)  # more than one resumable chunk
    key = push(store, data, chunks=2)
    upload = new_id()
    store.create_upload(upload)
    proxy.fail(next=1, status=status)
    with store.open_upload_for_append(upload, 0) as f:  # the listing is refused once
        proxy.fail(next=1, status=status)
        f.write(data[: 9 * MiB])  # the first resumable chunk is refused once
        f.write(data[9 * MiB :])
    assert proxy.failed == 1
    proxy.fail(next=2, status=status)
    assert store.blob_size(key) == len(data)
    assert proxy.failed == 2
    proxy.fail(next=1, status=status)
    assert hashlib.sha256(b"".join(store.read_upload(upload, len(data)))).digest() == hashlib.sha256(data).digest()
    proxy.fail(next=1, status=status)
    store.commit_upload(upload, key, len(data))
    assert read_all(store, key) == data


def test_gcs_persistent_outage_raises_storage_unavailable(faulty_gcs):
    store, proxy = faulty_gcs
    key = push(store, b"before the outage")
    proxy.fail(always=True, status=503)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        store.blob_size(key)
    assert caught.value.status == 503 and caught.value.code == "UNAVAILABLE"
    assert proxy.failed > 1  # retried with backoff before giving up
    assert time.monotonic() - started < 30
    with pytest.raises(StorageUnavailable):
        store.create_upload(new_id())
    with pytest.raises(StorageUnavailable):
        store.open_blob(key)
    assert not store.healthy()
    proxy.heal()
    assert store.healthy()
    assert read_all(store, key) == b"before the outage"
