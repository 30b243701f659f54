"""The token signing keyring on a real directory: an empty ring gets its first key (readable by
its owner only), rotation adds a key that signs while the older ones keep verifying, pruning
keeps only the newest, and a replica sharing the directory finds keys the other rotated in."""

from __future__ import annotations

import os
import stat

import jwt
import pytest

from app.auth import keys
from app.auth.keys import KeyRing


def test_an_empty_ring_gets_one_private_key(tmp_path):
    ring = KeyRing(tmp_path / "keys").load()
    assert len(ring.keys) == 1
    (pem,) = (tmp_path / "keys").glob("*.pem")
    assert pem.stem == ring.active.kid
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    assert KeyRing(tmp_path / "keys").load().active.kid == ring.active.kid  # read again, not remade


def test_a_rotated_key_signs_and_the_old_one_still_verifies(tmp_path):
    ring = KeyRing(tmp_path).load()
    old = ring.active
    issued = jwt.encode({"sub": "x"}, old.private, algorithm="ES256", headers={"kid": old.kid})
    new = ring.rotate()
    assert ring.active.kid == new.kid != old.kid
    assert [k.kid for k in ring.keys] == [old.kid, new.kid]
    kid = jwt.get_unverified_header(issued)["kid"]
    assert jwt.decode(issued, ring.find(kid).public, algorithms=["ES256"]) == {"sub": "x"}
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old.kid, new.kid}
    assert all(k["alg"] == "ES256" and k["use"] == "sig" and "d" not in k for k in ring.jwks()["keys"])


def test_pruning_keeps_only_the_newest(tmp_path):
    ring = KeyRing(tmp_path).load()
    old = ring.active.kid
    new = ring.rotate().kid
    assert ring.prune() == [old]
    assert [k.kid for k in ring.keys] == [new] and ring.find(old) is None
    assert [p.stem for p in tmp_path.glob("*.pem")] == [new]


def test_a_replica_finds_a_key_another_rotated_in(tmp_path, monkeypatch):
    mine, theirs = KeyRing(tmp_path).load(), KeyRing(tmp_path).load()
    added = theirs.rotate()
    monkeypatch.setattr(keys, "RESCAN_INTERVAL", 0.0)  # the rescan cool-down is not what this tests
    assert mine.find(added.kid).kid == added.kid
    assert mine.find("made-up") is None and mine.find(None) is None


def test_a_key_that_is_not_ec_p256_stops_the_server(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(SystemExit, match="EC P-256"):
        KeyRing(tmp_path).load()
