"""The composition root (app/server/composition.py) on a real SQLite database and the filesystem
store: `start` runs every background thread of a server process, `stop` ends every one of them
and writes what the meter and the pull times held, then closes the database."""

from __future__ import annotations

import threading
import time

import pytest

from app.config import Settings
from app.db.models import Manifest, Organization, Registry, Repository, UsageDay
from app.db.setup import open_database
from app.server.composition import Runtime

BACKGROUND = {
    "metering-flush",
    "pull-times",
    "tag-lists",
    "operation-worker",
    "garbage-collector",
    "retention-schedule",
    "upload-reaper",
    "spool-sweeper",
}


@pytest.fixture
def settings(tmp_path):
    return Settings.load(
        data_dir=tmp_path / "data",
        provisioner="none",
        database_url="",
        storage_url="",
        redis_url="",
        oidc_jwks_url="",
        metrics_addr="",
    )


@pytest.fixture
def db(settings):
    settings.data_dir.mkdir(parents=True)
    database = open_database(settings.database_url)
    yield database
    database.close()


def _manifest() -> Manifest:
    repository = Repository.create(registry=Registry.create(org=Organization.create(name="o"), name="r"), name="app")
    return Manifest.create(
        repository=repository,
        digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=2,
        content=b"{}",
    )


def _names(threads) -> set[str]:
    return {t.name for t in threads}


def test_stop_ends_every_thread_start_began_and_writes_the_buffered_counts(settings, db):
    manifest = _manifest()
    runtime = Runtime(settings)
    runtime.services.meter.interval = runtime.services.meter.interval * 1000  # only stop() writes
    runtime.start()
    running = runtime.threads_left()
    assert BACKGROUND <= _names(running), _names(running)
    assert runtime.spool.directory is not None and runtime.spool.directory.is_dir()
    spool_dir = runtime.spool.directory

    runtime.services.meter.count(manifest.repository.registry_id, "app", pulls=3, pull_bytes=30)
    runtime.services.pull_times.record(manifest)
    runtime.stop()

    assert runtime.threads_left() == []
    assert not spool_dir.exists()
    open_database(settings.database_url, migrate=False)  # stop closed it: look again
    day = UsageDay.get(UsageDay.repository == "app")
    assert (day.pulls, day.pull_bytes) == (3, 30)
    assert Manifest.get_by_id(manifest.id).pulled_at is not None


def test_nothing_runs_in_the_background_before_start(settings, db):
    before = set(threading.enumerate())
    runtime = Runtime(settings)
    runtime.services.meter.count(1, "app", pulls=1)
    time.sleep(0.1)
    assert _names(set(threading.enumerate()) - before) == set()
    runtime.stop()  # never started: only the database to close
