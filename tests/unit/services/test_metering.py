"""Metering on a real database (SQLite, and PostgreSQL for the upsert that adds traffic): stored
state counts a registry's blobs once however many repositories link them, traffic adds up per
repository and day across flushes, and the days a client asks for are checked."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import Blob, Manifest, Organization, Registry, Repository, RepositoryBlob, Tag
from app.db.setup import open_database
from app.services import metering
from app.spec.errors import RegistryError


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, tmp_path):
    if request.param == "postgres":
        from tests.support import postgres

        url = postgres.create_database()
    else:
        url = f"sqlite:///{tmp_path / 'berth.db'}"
    db = open_database(url)
    yield Registry.create(org=Organization.create(name="o"), name="r")
    db.close()


@pytest.fixture
def meter():
    """A traffic meter of this test's own, never started: counts are written when it flushes."""
    return metering.Meter()


def test_a_blob_linked_twice_is_stored_once_by_the_registry_and_counted_in_each_repository(registry):
    a, b = Repository.create(registry=registry, name="a"), Repository.create(registry=registry, name="b")
    Repository.create(registry=registry, name="empty")  # nothing committed: not shown
    shared = Blob.create(registry=registry, digest="sha256:" + "1" * 64, size=100)
    own = Blob.create(registry=registry, digest="sha256:" + "2" * 64, size=10)
    for repo, blob in ((a, shared), (b, shared), (b, own)):
        RepositoryBlob.create(repository=repo, blob=blob)
    m = Manifest.create(repository=a, digest="sha256:" + "3" * 64, media_type="x", size=1, content=b"{}")
    Tag.create(repository=a, name="latest", manifest=m)
    elsewhere = Registry.create(org=registry.org, name="elsewhere")
    Blob.create(registry=elsewhere, digest="sha256:" + "4" * 64, size=1000)

    assert metering.stored(registry) == metering.Stored(stored_bytes=110, blobs=2, repositories=2, tags=1, manifests=1)
    assert metering.repositories(registry) == [
        {"name": "a", "stored_bytes": 100, "blobs": 1, "tags": 1, "manifests": 1},
        {"name": "b", "stored_bytes": 110, "blobs": 2, "tags": 0, "manifests": 0},
    ]
    assert [r["name"] for r in metering.repositories(registry, only="b")] == ["b"]


def test_traffic_adds_up_per_repository_and_day_across_flushes(registry, meter):
    meter.count(registry.id, "a", pulls=1, pull_bytes=10)
    meter.flush()
    meter.count(registry.id, "a", pulls=2, pull_bytes=5, pushes=1, push_bytes=7)
    meter.count(registry.id, "b", pushes=1, push_bytes=3)
    today = metering.today()
    rows = meter.traffic(registry, today, today)  # writes what it holds first
    assert rows == [
        {"day": today.isoformat(), "repository": "a", "pulls": 3, "pull_bytes": 15, "pushes": 1, "push_bytes": 7},
        {"day": today.isoformat(), "repository": "b", "pulls": 0, "pull_bytes": 0, "pushes": 1, "push_bytes": 3},
    ]
    assert metering.totals(rows) == {"pulls": 3, "pull_bytes": 15, "pushes": 2, "push_bytes": 10}
    assert [r["repository"] for r in metering.traffic(registry, today, today, repository="b")] == ["b"]


def test_counts_for_a_deleted_registry_are_dropped(registry, meter):
    meter.count(registry.id + 1000, "gone", pulls=1)
    meter.flush()  # a foreign key refusal, not an exception


def test_many_repositories_are_written_in_batches_and_a_deleted_registrys_rows_alone_are_dropped(
    registry, meter, messages
):
    """More repository-days than one statement takes (FLUSH_BATCH), one of them in a registry
    deleted meanwhile: every other count is written, in a statement per batch (not one a row)."""
    n = metering.FLUSH_BATCH * 2 + 5
    for i in range(n):
        meter.count(registry.id, f"repo-{i:04d}", pushes=1, push_bytes=i)
    meter.count(registry.id + 1000, "gone", pulls=1)  # sorts last: in the third batch
    messages.clear()
    meter.flush()
    upserts = [m for m in messages if "usage_day" in m]
    assert len(upserts) <= 3 + 6 + 1  # three batches, the failed one again row by row (+ PREPAREs)
    today = metering.today()
    rows = metering.traffic(registry, today, today)
    assert len(rows) == n and sum(r["push_bytes"] for r in rows) == sum(range(n))
    meter.count(registry.id, "repo-0001", pushes=2)  # and they add up again
    meter.flush()
    assert metering.traffic(registry, today, today, repository="repo-0001")[0]["pushes"] == 3


def test_the_days_asked_for():
    today = metering.today()
    assert metering.window(None, None) == (today - dt.timedelta(days=29), today)
    day = dt.date(2026, 1, 31)
    assert metering.window(None, day) == (dt.date(2026, 1, 2), day)
    assert metering.parse_day("2026-02-28", "since") == dt.date(2026, 2, 28) and metering.parse_day(None, "x") is None
    with pytest.raises(RegistryError, match="since is after until"):
        metering.window(day, day - dt.timedelta(days=1))
    with pytest.raises(RegistryError, match="at most 366"):
        metering.window(day - dt.timedelta(days=366), day)
    for bad in ("2026-02-30", "2026-2-3", "2026-02-03\n", "٢٠٢٦-02-03", "20260203"):
        with pytest.raises(RegistryError) as raised:
            metering.parse_day(bad, "until")
        assert raised.value.field == "until"
