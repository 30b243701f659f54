"""Organizations and registries on a real database: names and fields checked with the field
named, names unique, a PATCH that changes only what it may, and the first-start bootstrap that
exactly one of several replicas performs (PostgreSQL)."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from app.auth.token_secrets import find_token
from app.db.models import AccessToken, Organization, Registry
from app.db.setup import open_database
from app.services import registries
from app.spec.errors import RegistryError


@pytest.fixture
def org(database):
    return registries.create_org("acme")


def test_an_organization_name_is_a_dns_label_and_unique(org):
    assert registries.get_org("acme").id == org.id
    with pytest.raises(RegistryError, match="CONFLICT"):
        registries.create_org("acme")
    with pytest.raises(RegistryError, match="NOT_FOUND"):
        registries.get_org("nobody")


@pytest.mark.parametrize(
    "name, message",
    [
        (None, "required"),
        ("", "required"),
        ("a" * 64, "64 characters"),
        ("Team", "not a DNS label"),
        ("-a", "not a DNS label"),
        ("a\n", "not a DNS label"),
    ],
)
def test_a_bad_registry_name_says_which_rule(name, message):
    with pytest.raises(RegistryError, match=message) as raised:
        registries.validate_name(name)
    assert raised.value.field == "name"


def test_a_registry_is_created_with_its_fields_checked_and_its_name_unique(org):
    registry = registries.create_registry(org, "images", "public", "alice", pull_namespaces=["b", "a", "a"])
    assert (registry.visibility, registry.created_by, registries.pull_namespaces(registry)) == (
        "public",
        "alice",
        ["a", "b"],
    )
    assert registries.find_registry("images").id == registry.id and registries.find_registry("nope") is None
    with pytest.raises(RegistryError, match="is taken") as raised:
        registries.create_registry(registries.create_org("other"), "images")
    assert raised.value.field == "name"
    for fields, field in (
        ({"visibility": "secret"}, "visibility"),
        ({"pull_namespaces": ["Bad_NS"]}, "pull_namespaces"),
        ({"pull_namespaces": "ns"}, "pull_namespaces"),
        ({"custom_domain": "localhost"}, "custom_domain"),
    ):
        with pytest.raises(RegistryError) as raised:
            registries.create_registry(org, "x", **fields)
        assert raised.value.field == field
    assert [r.name for r in registries.list_registries(org)] == ["images"]


def test_a_registry_is_found_only_in_its_own_organization(org):
    registries.create_registry(org, "mine")
    with pytest.raises(RegistryError, match="not found in organization 'other'"):
        registries.get_registry(registries.create_org("other"), "mine")


def test_a_custom_domain_claimed_by_another_registry_is_a_conflict(org):
    registries.create_registry(org, "a", custom_domain="Images.Example.COM.")
    assert Registry.get(Registry.name == "a").custom_domain == "images.example.com"
    with pytest.raises(RegistryError, match="claimed by another registry"):
        registries.create_registry(org, "b", custom_domain="images.example.com")
    assert registries.find_registry("b") is None


def test_a_patch_changes_what_it_may_and_nothing_else(org):
    registry = registries.create_registry(org, "r")
    registries.update_registry(
        registry, {"visibility": "public", "immutable_tags": ["rel/*"], "manifest_policy": {"mode": "sparse"}}
    )
    stored = Registry.get_by_id(registry.id)
    assert stored.visibility == "public" and json.loads(stored.immutable_tags) == ["rel/*"]
    assert json.loads(stored.manifest_policy)["mode"] == "sparse"
    with pytest.raises(RegistryError, match="cannot change 'name'"):
        registries.update_registry(stored, {"name": "s"})
    with pytest.raises(RegistryError, match="only an organization owner or admin") as raised:
        registries.update_registry(stored, {"sku": "free"}, role="developer")
    assert raised.value.field == "sku"
    registries.update_registry(stored, {"sku": "free"}, role="admin")
    assert Registry.get_by_id(registry.id).sku == "free"


def test_a_registry_being_deleted_cannot_be_changed(org):
    registry = registries.create_registry(org, "r", status="deleting")
    with pytest.raises(RegistryError, match="being deleted"):
        registries.update_registry(registry, {"visibility": "public"})


def test_bootstrap_once_with_a_token_file_only_its_owner_reads(database, tmp_path):
    secret = registries.bootstrap(tmp_path, None)
    assert find_token(secret).role == "owner" and Registry.get().name == "default"
    path = tmp_path / "bootstrap-token"
    assert path.read_text() == secret + "\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert registries.bootstrap(tmp_path, None) is None and AccessToken.select().count() == 1


def test_bootstrap_with_a_given_token_writes_no_file(database, tmp_path):
    assert registries.bootstrap(tmp_path, "berth_given") is None
    assert find_token("berth_given") is not None and not (tmp_path / "bootstrap-token").exists()


def test_replicas_starting_together_on_postgres_bootstrap_once(tmp_path):
    """Four replicas reach the emptiness check together: a lock on the organization table, held
    from outside until all four wait on a lock, makes them (without the bootstrap's own
    serialization, all four would find the database empty and three would fail)."""
    import time

    from tests.support import postgres

    url = postgres.create_database()
    db = open_database(url)
    try:
        results = []

        def replica(n):
            try:
                results.append(registries.bootstrap(tmp_path / str(n), f"berth_replica_{n}"))
            except Exception as error:  # noqa: BLE001 - a lost race must not be an error
                results.append(error)
            finally:
                db.close()

        for n in range(4):
            (tmp_path / str(n)).mkdir()
        holder = postgres._connect(url)
        holder.autocommit = False
        holder.cursor().execute("LOCK TABLE organization IN ACCESS EXCLUSIVE MODE")
        threads = [threading.Thread(target=replica, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while (
            postgres.sql(
                url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )[0][0]
            < 4
        ):
            assert time.monotonic() < deadline, "the replicas did not all reach the lock"
            time.sleep(0.02)
        holder.rollback()
        holder.close()
        for t in threads:
            t.join(30)
        assert results == [None] * 4
        assert Organization.select().count() == 1 and AccessToken.select().count() == 1
    finally:
        db.close()
