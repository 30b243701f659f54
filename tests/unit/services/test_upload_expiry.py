"""Expiring idle upload sessions (app/services/upload_expiry.py), on a real SQLite database and
the filesystem store: what garbage collection and the server's reaper both call."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from app.db.models import Organization, Registry, Repository, Upload, utcnow
from app.db.setup import open_database
from app.services import upload_expiry
from app.services.uploads import UploadService
from app.storage.filesystem import FilesystemStore


@pytest.fixture
def env(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    org = Organization.create(name="o")
    store = FilesystemStore(tmp_path / "storage")
    yield org, store, UploadService(store)
    db.close()


def session(service: UploadService, registry: Registry, name: str, idle_for: dt.timedelta) -> Upload:
    upload = service.start(Repository.create(registry=registry, name=name))
    service.append(upload, io.BytesIO(b"some bytes"), 10)
    Upload.update(updated_at=utcnow() - idle_for).where(Upload.id == upload.id).execute()
    return upload


def test_only_sessions_idle_past_the_cutoff_expire_with_their_bytes_and_unseen_repository(env):
    org, store, service = env
    registry = Registry.create(org=org, name="r")
    idle = session(service, registry, "idle", dt.timedelta(hours=2))
    busy = session(service, registry, "busy", dt.timedelta(seconds=1))
    before = utcnow() - dt.timedelta(hours=1)
    assert upload_expiry.expire_idle(store, before, dry_run=True) == 1
    assert Upload.select().count() == 2  # a dry run changes nothing
    assert upload_expiry.expire_idle(store, before, forget=service.forget) == 1
    assert [u.id for u in Upload.select()] == [busy.id]
    assert not (store.uploads / idle.id).exists() and (store.uploads / busy.id).exists()
    assert [r.name for r in Repository.select()] == ["busy"]


def test_a_collection_of_one_registry_expires_only_its_sessions(env):
    org, store, service = env
    mine, theirs = Registry.create(org=org, name="mine"), Registry.create(org=org, name="theirs")
    session(service, mine, "a", dt.timedelta(days=2))
    kept = session(service, theirs, "b", dt.timedelta(days=2))
    assert upload_expiry.expire_idle(store, utcnow() - dt.timedelta(days=1), registry=mine) == 1
    assert [u.id for u in Upload.select()] == [kept.id]


def test_the_reaper_runs_a_tenth_of_the_expiry_apart_within_bounds():
    assert upload_expiry.reaper_interval(dt.timedelta(seconds=100)) == dt.timedelta(seconds=10)
    assert upload_expiry.reaper_interval(dt.timedelta(days=1)) == dt.timedelta(minutes=15)
    assert upload_expiry.reaper_interval(dt.timedelta(seconds=2)) == dt.timedelta(seconds=1)
