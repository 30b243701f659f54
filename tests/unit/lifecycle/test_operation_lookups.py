"""Finding operations for the management API, on a real SQLite database."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import Operation, Organization, Registry
from app.db.setup import open_database
from app.lifecycle import operations


@pytest.fixture
def registry(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield Registry.create(org=Organization.create(name="o"), name="r")
    db.close()


def operation(registry: Registry, id_: str, kind: str, minutes: int) -> Operation:
    return Operation.create(
        id=id_,
        org=registry.org,
        registry=registry,
        registry_name=registry.name,
        kind=kind,
        created_at=dt.datetime(2026, 11, 1) + dt.timedelta(minutes=minutes),
    )


def test_an_operation_is_found_by_id(registry):
    operation(registry, "op-1", "create", 0)
    assert operations.find("op-1").kind == "create"
    assert operations.find("op-2") is None


def test_the_latest_operation_of_a_registry_is_the_last_created(registry):
    assert operations.latest(registry) is None
    other = Registry.create(org=registry.org, name="other")
    operation(registry, "op-1", "create", 0)
    operation(registry, "op-3", "update", 5)
    operation(registry, "op-2", "delete", 2)
    operation(other, "op-4", "create", 9)
    assert operations.latest(registry).id == "op-3"
