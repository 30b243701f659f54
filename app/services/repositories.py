"""Repositories inside a registry: lookup and creation on first push."""

from __future__ import annotations

import peewee as pw

from app.db.models import Registry, Repository
from app.db.prepared import Prepared
from app.oci.errors import RegistryError


_BY_NAME = Prepared(
    lambda registry_id, name: Repository.select().where((Repository.registry == registry_id) & (Repository.name == name)),
    "is", Repository,
)


def find(registry: Registry, name: str) -> Repository | None:
    return _BY_NAME.first(registry.id, name)


def get(registry: Registry, name: str) -> Repository:
    repository = find(registry, name)
    if repository is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found")
    return repository


def get_or_create(registry: Registry, name: str) -> Repository:
    repository = find(registry, name)
    if repository is not None:
        return repository
    try:
        Repository.insert(registry=registry, name=name).on_conflict_ignore().execute()
    except pw.IntegrityError:
        pass
    return get(registry, name)
