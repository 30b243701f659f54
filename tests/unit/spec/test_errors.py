"""The error vocabulary: each code carries its status and default message, a raise may override
either, and the OCI envelope carries `detail` only when there is one."""

from __future__ import annotations

import pytest

from app.spec.errors import CODES, RegistryError


def test_a_code_brings_its_status_and_default_message():
    error = RegistryError("BLOB_UNKNOWN")
    assert (error.status, error.message) == (404, "blob unknown to registry")
    assert str(error) == "BLOB_UNKNOWN: blob unknown to registry"


def test_a_raise_may_say_more_and_answer_another_status():
    error = RegistryError(
        "DENIED", "no", status=401, headers={"Retry-After": "1"}, challenge_error="insufficient_scope"
    )
    assert (error.status, error.message, error.headers) == (401, "no", {"Retry-After": "1"})
    assert error.challenge_error == "insufficient_scope"


def test_the_envelope_carries_detail_only_when_given():
    assert RegistryError("NAME_INVALID", "bad").envelope() == {"errors": [{"code": "NAME_INVALID", "message": "bad"}]}
    assert RegistryError("NAME_INVALID", detail={"name": "x"}).envelope()["errors"][0]["detail"] == {"name": "x"}
    assert RegistryError("NAME_INVALID", detail=0).envelope()["errors"][0]["detail"] == 0


def test_an_unknown_code_is_a_programming_error():
    with pytest.raises(KeyError):
        RegistryError("NO_SUCH_CODE")


def test_every_code_is_an_error_status_with_a_message():
    for code, (status, message) in CODES.items():
        assert 400 <= status < 600 and message and code.isupper(), code
    assert CODES["UNAVAILABLE"][0] == 503 and "blob" not in CODES["UNAVAILABLE"][1]
