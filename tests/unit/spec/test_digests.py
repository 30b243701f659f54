import hashlib

import pytest

from app.spec import digests
from app.spec.errors import RegistryError


def test_parse_valid():
    d = digests.parse("sha256:" + "a" * 64)
    assert (d.algorithm, d.encoded) == ("sha256", "a" * 64)
    assert str(digests.parse("sha512:" + "0" * 128)) == "sha512:" + "0" * 128


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "sha256",
        "sha256:",
        ":abc",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,
        "sha256:" + "a" * 64 + "/..",
        "sha256:../../etc/passwd",
        "SHA256:" + "a" * 64,
    ],
)
def test_parse_invalid(value):
    with pytest.raises(RegistryError) as e:
        digests.parse(value)
    assert e.value.code == "DIGEST_INVALID" and e.value.status == 400


def test_of_bytes():
    assert str(digests.of_bytes(b"x")) == "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert str(digests.of_bytes(b"x", "sha512")) == "sha512:" + hashlib.sha512(b"x").hexdigest()
