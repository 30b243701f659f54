"""Organizations and registries: creation, lookup, and the first-start bootstrap."""

from __future__ import annotations

import os
from pathlib import Path

import peewee as pw

from app.auth.credentials import generate_token, hash_token
from app.db.models import AccessToken, Organization, Registry
from app.db.prepared import Prepared
from app.db.setup import transaction
from app.oci.errors import RegistryError
from app.oci.names import check_registry

VISIBILITIES = ("private", "public")
BOOTSTRAP_ORG = "default"
BOOTSTRAP_REGISTRY = "default"


def get_org(name: str) -> Organization:
    org = Organization.get_or_none(Organization.name == name)
    if org is None:
        raise RegistryError("NOT_FOUND", f"organization {name!r} not found")
    return org


def create_org(name: str) -> Organization:
    """A new organization. Its names follow the registry-name rules (a DNS label)."""
    check_registry(name)
    try:
        with transaction():
            return Organization.create(name=name)
    except pw.IntegrityError:
        raise RegistryError("CONFLICT", f"organization name {name!r} is taken") from None


_REGISTRY_BY_NAME = Prepared(lambda n: Registry.select().where(Registry.name == n), "s", Registry)


def find_registry(name: str) -> Registry | None:
    return _REGISTRY_BY_NAME.first(name)


def create_registry(
    org: Organization, name: str, visibility: str = "private", created_by: str | None = None
) -> Registry:
    check_registry(name)
    if visibility not in VISIBILITIES:
        raise RegistryError("INVALID", f"visibility must be one of {list(VISIBILITIES)}")
    try:
        with transaction():
            return Registry.create(org=org, name=name, visibility=visibility, created_by=created_by)
    except pw.IntegrityError:
        raise RegistryError("CONFLICT", f"registry name {name!r} is taken") from None


def list_registries(org: Organization) -> list[Registry]:
    return list(org.registries.order_by(Registry.name))


def bootstrap(data_dir: Path, token: str | None) -> str | None:
    """On an empty database: the `default` org, its private `default` registry and an owner token.

    Returns the generated token when one was generated (to be printed once), else None. The
    token is also written to `<data_dir>/bootstrap-token` with mode 0600.
    """
    with transaction():
        if Organization.select().exists():
            return None
        org = Organization.create(name=BOOTSTRAP_ORG)
        Registry.create(org=org, name=BOOTSTRAP_REGISTRY, visibility="private", created_by="bootstrap")
        generated = not token
        secret = token or generate_token()
        AccessToken.create(org=org, name="bootstrap", token_hash=hash_token(secret), role="owner")
    if generated:
        path = Path(data_dir) / "bootstrap-token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret
    return None
