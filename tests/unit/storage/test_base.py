"""Where a registry's blob lives: one prefix per registry, two hex characters of fan-out."""

from __future__ import annotations

from app.storage.base import StorageUnavailable, blob_key


def test_a_blob_key_is_under_its_registry_s_prefix():
    digest = "sha256:" + "ab" + "c" * 62
    assert blob_key(12, digest) == f"12/sha256/ab/ab{'c' * 62}"
    assert blob_key(1, digest) != blob_key(12, digest) and not blob_key(12, digest).startswith("1/")


def test_an_unavailable_store_answers_503_with_retry_after():
    error = StorageUnavailable("the bucket timed out", retry_after=7)
    assert (error.code, error.status, error.headers) == ("UNAVAILABLE", 503, {"Retry-After": "7"})
