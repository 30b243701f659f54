"""Repositories inside a registry: lookup and creation on first push."""

from __future__ import annotations

import peewee as pw

from app.db.models import Registry, Repository
from app.oci.errors import RegistryError


def find(registry: Registry, name: str) -> Repository | None:
    return Repository.get_or_none((Repository.registry == registry) & (Repository.name == name))


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
