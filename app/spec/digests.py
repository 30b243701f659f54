"""Content digests: parsing, validation and streaming hashers (sha256, sha512)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from app.spec.errors import RegistryError

# Encoded lengths per algorithm (lowercase hex), as the OCI image spec registers them.
ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z")
_HEX = re.compile(r"^[a-f0-9]+\Z")


@dataclass(frozen=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def parse(value: str | None) -> Digest:
    """Parse and validate a digest string; raise DIGEST_INVALID otherwise."""
    if not value:
        raise RegistryError("DIGEST_INVALID", "digest is missing")
    match = _DIGEST.fullmatch(value)
    if not match:
        raise RegistryError("DIGEST_INVALID", f"malformed digest {value[:200]!r}")
    algorithm, encoded = match.groups()
    expected = ALGORITHMS.get(algorithm)
    if expected is None:
        raise RegistryError(
            "DIGEST_INVALID",
            f"unsupported digest algorithm {algorithm!r}; use one of {sorted(ALGORITHMS)}",
        )
    if len(encoded) != expected or not _HEX.fullmatch(encoded):
        raise RegistryError("DIGEST_INVALID", f"{algorithm} digests are {expected} lowercase hex characters")
    return Digest(algorithm, encoded)


def canonical(value: str | None) -> str | None:
    """The digest as stored, or None when `value` is not a digest this registry takes (so
    nothing is stored under it)."""
    try:
        return str(parse(value))
    except RegistryError:
        return None


def is_digest(reference: str) -> bool:
    """True when a manifest reference looks like a digest rather than a tag."""
    return ":" in reference


def of_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
