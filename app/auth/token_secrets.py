"""Access-token secrets: generation, hashing and lookup.

Only the SHA-256 of a token is stored. A lookup goes through the hash, and the stored hash is
compared in constant time, so a caller learns nothing from timing about other tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from app.clock import SYSTEM, Clock
from app.db.checked import CheckedLookup
from app.db.models import AccessToken

TOKEN_PREFIX = "berth_"
# Kept between data-plane reads and checked, not read again, on PostgreSQL (app/db/checked.py).
_BY_HASH = CheckedLookup(lambda h: AccessToken.select().where(AccessToken.token_hash == h), "s", AccessToken)
_BY_ID = CheckedLookup(lambda i: AccessToken.select().where(AccessToken.id == i), "i", AccessToken)


def generate_token() -> str:
    """A new secret: 256 random bits, URL-safe, with a recognisable prefix for secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_token(secret: str, clock: Clock = SYSTEM) -> AccessToken | None:
    """The live AccessToken for a presented secret, or None."""
    if not secret or len(secret) > 4096:
        return None
    digest = hash_token(secret)
    token = _BY_HASH.first(digest)
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    return token if is_live(token, clock) else None


def find_token_by_id(token_id: int) -> AccessToken | None:
    return _BY_ID.first(token_id)


def forget_kept(token: AccessToken) -> None:
    """This process changed `token`'s row: its kept copies are stale (app/db/checked.py)."""
    _BY_HASH.forget(token.token_hash)
    _BY_ID.forget(token.id)


def fingerprint(token: AccessToken) -> str:
    """What registry and refresh tokens carry to name one access token: a row id can be reused
    (SQLite hands out a deleted row's id again), its secret's hash never is. Derived, so the
    hash itself is not in the JWT."""
    return hashlib.sha256(b"berth-token-fingerprint:" + token.token_hash.encode()).hexdigest()[:24]


def find_live_token(token_id: object, token_fingerprint: object, clock: Clock = SYSTEM) -> AccessToken | None:
    """The live access token a registry or refresh token names, or None."""
    if not isinstance(token_id, int) or not isinstance(token_fingerprint, str):
        return None
    token = find_token_by_id(token_id)
    if token is None or not hmac.compare_digest(fingerprint(token), token_fingerprint) or not is_live(token, clock):
        return None
    return token


def is_live(token: AccessToken, clock: Clock = SYSTEM) -> bool:
    """Not revoked and not expired."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > clock.utcnow())


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic ...` header, or None if malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
