"""The operation worker thread over a real runner, SQLite database and filesystem store: a woken
worker runs a queued operation at once (not at the next poll), and stop() ends it."""

from __future__ import annotations

import datetime as dt
import time

from app.db.models import Operation, Organization, Registry
from app.lifecycle import operations
from app.lifecycle.operations import OperationRunner, RunnerSettings
from app.lifecycle.provisioner import NoProvisioner
from app.lifecycle.worker import Worker
from app.storage.filesystem import FilesystemStore


def test_a_woken_worker_runs_a_queued_operation_without_waiting_for_its_poll(database, tmp_path):
    runner = OperationRunner(
        NoProvisioner(),
        FilesystemStore(tmp_path / "storage"),
        RunnerSettings(domain="registry.test", lease=dt.timedelta(seconds=30), max_attempts=3, backoff_base=0),
        owner="w",
    )
    worker = Worker(runner, poll_interval=3600).start()
    try:
        time.sleep(0.05)  # let the first (empty) pass go to sleep on its poll
        registry, op = operations.request_create(Organization.create(name="acme"), "images")
        worker.wake()
        deadline = time.monotonic() + 20
        while Operation.get_by_id(op.id).state != "succeeded":
            assert time.monotonic() < deadline, Operation.get_by_id(op.id).log
            time.sleep(0.02)
        assert Registry.get_by_id(registry.id).status == "ready"
    finally:
        worker.stop()
    assert not worker._thread.is_alive()
