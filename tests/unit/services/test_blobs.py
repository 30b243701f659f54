"""A blob being collected while a client checks or mounts it, on a real SQLite database: the
client must be told the blob is not there (and upload it again), never that it is."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from app.db.models import Blob, Organization, Registry, Repository, RepositoryBlob
from app.db.setup import open_database
from app.services.blobs import BlobService
from app.storage.filesystem import FilesystemStore

OLD = dt.datetime(2020, 1, 1)


@pytest.fixture
def world(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    org = Organization.create(name="o")
    registry = Registry.create(org=org, name="r")
    seed = Repository.create(registry=registry, name="seed")
    target = Repository.create(registry=registry, name="target")
    service = BlobService(FilesystemStore(tmp_path / "storage"), gc_grace=dt.timedelta(seconds=15))
    yield registry, seed, target, service
    db.close()


def _old_blob(registry, repository, char: str) -> Blob:
    blob = Blob.create(registry=registry, digest="sha256:" + char * 64, size=1, created_at=OLD, touched_at=OLD)
    RepositoryBlob.create(repository=repository, blob=blob)
    return blob


def _while_collected(blob: Blob, act):
    """Run `act` while a collection's transaction deletes `blob` (it read the row just before),
    the collection committing exactly when `act` first asks for the write lock: after whatever
    it read first, before its write (a touch's UPDATE, or a mount's BEGIN IMMEDIATE) runs."""
    deleted, writing, outcome = threading.Event(), threading.Event(), {}
    writes = []

    def collect():
        # SQLite's write lock itself, as a writer that takes no turn in this process's writer
        # turnstile holds it (app/db/writer.py): the act then reaches BEGIN IMMEDIATE and waits
        # there, where the trace callback sees it.
        with Blob._meta.database.atomic("IMMEDIATE"):
            Blob.delete().where(Blob.id == blob.id).execute()
            deleted.set()
            if not writing.wait(30):
                outcome["collector"] = "act neither wrote nor ended in 30 s"

    def on_statement(sql: str) -> None:
        # sqlite3's trace callback runs as a statement starts, before it waits for the lock.
        if sql.lstrip().upper().startswith(("BEGIN IMMEDIATE", "UPDATE")):
            writes.append(sql.split('"')[0].strip())
            writing.set()

    def run():
        connection = Blob._meta.database.connection()  # this thread's own
        connection.set_trace_callback(on_statement)
        try:
            outcome["value"] = act()
        except Exception as e:  # noqa: BLE001 - the test reports it
            outcome["error"] = e
        finally:
            connection.set_trace_callback(None)
            writing.set()  # an act that never wrote still lets the collection end

    collector = threading.Thread(target=collect)
    collector.start()
    deleted.wait()
    actor = threading.Thread(target=run)
    actor.start()
    collector.join()
    actor.join()
    return outcome, writes[:1]


@pytest.mark.parametrize("how", ["check", "mount"])
def test_a_blob_collected_meanwhile_is_reported_gone(world, how):
    registry, seed, target, service = world
    blob = _old_blob(registry, seed, "a")
    act = (
        (lambda: service.find(seed, blob.digest))
        if how == "check"
        else (lambda: service.mount(target, blob.digest, seed))
    )
    outcome, first_write = _while_collected(blob, act)
    assert outcome == {"value": None}
    # A check reads the row before the collection commits and touches it after (the race); a
    # mount waits for the collection under the write lock and reads the row gone.
    assert first_write == (["UPDATE"] if how == "check" else ["BEGIN IMMEDIATE"])
    assert RepositoryBlob.select().count() == 0


def test_a_checked_blob_is_touched_so_a_collection_keeps_it(world):
    registry, seed, target, service = world
    blob = _old_blob(registry, seed, "b")
    assert service.find(seed, blob.digest) is not None
    assert Blob.get_by_id(blob.id).touched_at > dt.datetime.utcnow() - dt.timedelta(seconds=5)
    assert service.touch_every == dt.timedelta(seconds=3.75)  # a quarter of the 15 s grace
