"""Resumable SHA-256: the same digest as hashlib for any split of the bytes, across a saved and
resumed state (as another worker resumes an upload); a state that is not one resumes nothing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services import hashstate
from app.services.hashstate import ResumableSha256

pytestmark = pytest.mark.skipif(not hashstate.available, reason="libcrypto cannot be loaded here")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_a_hash_resumed_between_any_chunks_is_hashlib_s(chunks):
    h = ResumableSha256()
    for chunk in chunks:
        h = ResumableSha256.resume(h.state())
        h.update(chunk)
    assert h.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_buffers_of_every_kind_are_hashed_and_digest_does_not_end_the_hash():
    h = ResumableSha256()
    h.update(b"ab")
    h.update(bytearray(b"cd"))
    h.update(memoryview(b"ef"))
    h.update(memoryview(bytearray(b"gh")))
    h.update(b"")
    assert h.hexdigest() == hashlib.sha256(b"abcdefgh").hexdigest()
    h.update(b"i")
    assert h.hexdigest() == hashlib.sha256(b"abcdefghi").hexdigest()


def test_a_copy_goes_its_own_way():
    a = ResumableSha256()
    a.update(b"x")
    b = a.copy()
    b.update(b"y")
    assert a.hexdigest() == hashlib.sha256(b"x").hexdigest() and b.hexdigest() == hashlib.sha256(b"xy").hexdigest()


@pytest.mark.parametrize("state", [None, b"", b"garbage", ResumableSha256().state()[:-1], b"x" * 131])
def test_what_is_not_a_state_resumes_nothing(state):
    assert ResumableSha256.resume(state) is None
