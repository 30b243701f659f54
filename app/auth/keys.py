"""The registry token service's signing keys (ES256), kept as a keyring so they can rotate.

Every key in the ring verifies; the newest signs. Rotation adds a key; the old ones keep
verifying tokens already issued until they are pruned (after at least one token lifetime).
Replicas share the ring by mounting the same directory (`BERTH_TOKEN_KEYS_DIR`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

RESCAN_INTERVAL = 5.0
ACTIVE_RESCAN_INTERVAL = 30.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    created: float

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    def jwk(self) -> dict:
        jwk = json.loads(ECAlgorithm.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}


def _kid(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:15]).decode().rstrip("=")


class KeyRing:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._scanned_at = 0.0

    def _scan(self) -> list[SigningKey]:
        keys = []
        for path in sorted(self.directory.glob("*.pem")):
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise SystemExit(f"{path}: token signing keys must be EC P-256 private keys")
            keys.append(SigningKey(_kid(private), private, path.stat().st_mtime))
        return sorted(keys, key=lambda k: k.created)

    def load(self) -> KeyRing:
        """Read the ring; create its first key when it is empty."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._keys = self._scan()
            if not self._keys:
                self._keys = [self._write_new()]
            self._scanned_at = time.monotonic()
        return self

    def _write_new(self) -> SigningKey:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = _kid(private)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(self.directory / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return SigningKey(kid, private, (self.directory / f"{kid}.pem").stat().st_mtime)

    def rotate(self) -> SigningKey:
        """Add a new signing key; older keys keep verifying."""
        with self._lock:
            key = self._write_new()
            self._keys = self._scan()
            return key

    def prune(self) -> list[str]:
        """Remove every key but the newest; returns the removed key ids."""
        with self._lock:
            keys = self._scan()
            removed = []
            for key in keys[:-1]:
                (self.directory / f"{key.kid}.pem").unlink(missing_ok=True)
                removed.append(key.kid)
            self._keys = keys[-1:]
            return removed

    @property
    def active(self) -> SigningKey:
        """The newest key. The ring is re-read now and then, so a key added by `berth keys
        rotate` (or by another replica's operator) starts signing without a restart."""
        if time.monotonic() - self._scanned_at > ACTIVE_RESCAN_INTERVAL:
            with self._lock:
                self._scanned_at = time.monotonic()
                self._keys = self._scan() or self._keys
        return self._keys[-1]

    @property
    def keys(self) -> list[SigningKey]:
        """Every key in the ring, oldest first (the last one signs)."""
        return list(self._keys)

    def find(self, kid: str | None) -> SigningKey | None:
        key = next((k for k in self._keys if k.kid == kid), None)
        if key is None and kid and time.monotonic() - self._scanned_at > RESCAN_INTERVAL:
            # Another replica may have rotated: re-read the ring (at most every few seconds, so
            # made-up key ids cannot turn into disk reads).
            with self._lock:
                self._scanned_at = time.monotonic()
                self._keys = self._scan() or self._keys
            key = next((k for k in self._keys if k.kid == kid), None)
        return key

    def jwks(self) -> dict:
        return {"keys": [k.jwk() for k in self._keys]}
