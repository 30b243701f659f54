"""The operation state machine against a real SQLite database and a real filesystem store,
with a provisioner that fails on purpose at the step a test names (the real provisioners have
nothing to fail on demand)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.db.models import AccessToken, Blob, Operation, Organization, Registry, Repository, Upload
from app.db.setup import open_database
from app.lifecycle import operations
from app.lifecycle.operations import OperationRunner, RunnerSettings
from app.lifecycle.provisioner import Provisioner, ProvisionError
from app.spec.errors import RegistryError
from app.storage.base import blob_key
from app.storage.filesystem import FilesystemStore
from tests.support.clock import FakeClock


class FaultyProvisioner(Provisioner):
    name = "faulty"

    def __init__(self) -> None:
        self.failures: dict[str, list[ProvisionError]] = {"provision": [], "destroy": []}
        self.calls: list[str] = []

    def fail(self, method: str, times: int = 1, transient: bool = False) -> None:
        self.failures[method] += [ProvisionError(f"{method} broke on purpose", transient=transient)] * times

    def _maybe_fail(self, method: str) -> None:
        self.calls.append(method)
        if self.failures[method]:
            raise self.failures[method].pop(0)

    def provision(self, spec, log):
        log(f"provisioning {spec.name} with a token of {len(spec.pull_token)} characters")
        self._maybe_fail("provision")
        return {"endpoint": spec.hostname}

    def destroy(self, spec, log):
        self._maybe_fail("destroy")


class FlakyStore(FilesystemStore):
    """A real filesystem store whose blob deletes fail while `broken` is set."""

    broken = False

    def delete_blob(self, key: str) -> None:
        if self.broken:
            raise OSError("disk went away")
        super().delete_blob(key)


@pytest.fixture
def world(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    store = FlakyStore(tmp_path / "storage")
    provisioner = FaultyProvisioner()
    settings = RunnerSettings(domain="registry.test", lease=dt.timedelta(seconds=30), max_attempts=3, backoff_base=0)
    org = Organization.create(name="acme")
    yield org, store, provisioner, OperationRunner(provisioner, store, settings, owner="worker-a")
    db.close()


def run_all(runner: OperationRunner) -> None:
    while runner.run_next() is not None:
        pass


def state(op: Operation) -> Operation:
    return Operation.get_by_id(op.id)


def test_create_runs_to_ready_with_a_pull_token(world):
    org, _, provisioner, runner = world
    registry, op = operations.request_create(org, "images", requested_by="alice")
    assert registry.status == "provisioning" and op.state == "pending"
    run_all(runner)
    assert state(op).state == "succeeded" and Registry.get_by_id(registry.id).status == "ready"
    tokens = list(AccessToken.select().where(AccessToken.registry == registry))
    assert [(t.name, t.role) for t in tokens] == [("pull-secret", "reader")]
    assert "provisioning images with a token of" in state(op).log


def test_a_failed_create_marks_the_registry_failed_and_retry_recovers(world):
    org, _, provisioner, runner = world
    provisioner.fail("provision")
    registry, op = operations.request_create(org, "images")
    run_all(runner)
    failed = state(op)
    assert failed.state == "failed" and failed.error == "provision: provision broke on purpose"
    assert [s["state"] for s in json.loads(failed.steps)] == ["failed", "pending"]
    assert Registry.get_by_id(registry.id).status == "failed"
    operations.retry(failed, requested_by="alice")
    assert Registry.get_by_id(registry.id).status == "provisioning"
    run_all(runner)
    assert state(op).state == "succeeded" and Registry.get_by_id(registry.id).status == "ready"
    # A retry made a new pull token and revoked the first one.
    live = AccessToken.select().where((AccessToken.registry == registry) & AccessToken.revoked_at.is_null())
    assert live.count() == 1


def test_transient_failures_are_retried_with_backoff_then_succeed(world):
    org, _, provisioner, runner = world
    provisioner.fail("provision", times=2, transient=True)
    registry, op = operations.request_create(org, "images")
    run_all(runner)
    done = state(op)
    assert done.state == "succeeded" and done.attempts == 3
    assert done.log.count("transient failure") == 2


def test_transient_failures_give_up_after_max_attempts(world):
    org, _, provisioner, runner = world
    provisioner.fail("provision", times=5, transient=True)
    registry, op = operations.request_create(org, "images")
    run_all(runner)
    assert state(op).state == "failed" and state(op).attempts == 3


def test_backoff_delays_the_next_attempt(world):
    org, store, provisioner, runner = world
    runner.settings.backoff_base = 60
    provisioner.fail("provision", transient=True)
    _, op = operations.request_create(org, "images")
    run_all(runner)
    waiting = state(op)
    assert waiting.state == "pending" and waiting.next_attempt_at > dt.datetime.utcnow() + dt.timedelta(seconds=50)
    assert runner.run_next() is None  # not due yet


def _fill(registry: Registry, store: FlakyStore, blobs: int = 3) -> list[str]:
    repo = Repository.create(registry=registry, name="app")
    keys = []
    for i in range(blobs):
        digest = "sha256:" + f"{i:02d}" * 32
        key = blob_key(registry.id, digest)
        upload_id = f"00000000-0000-0000-0000-{i:012d}"
        store.create_upload(upload_id)
        with store.open_upload_for_append(upload_id, 0) as f:
            f.write(b"x" * (i + 1))
        store.commit_upload(upload_id, key, i + 1)
        Blob.create(registry=registry, digest=digest, size=i + 1)
        keys.append(key)
    store.create_upload("11111111-0000-0000-0000-000000000000")
    Upload.create(id="11111111-0000-0000-0000-000000000000", repository=repo, registry_id=repo.registry_id)
    return keys


def test_delete_resumes_from_the_failed_step(world):
    org, store, provisioner, runner = world
    registry, _ = operations.request_create(org, "images")
    run_all(runner)
    keys = _fill(registry, store)
    store.broken = True
    op = operations.request_delete(registry, requested_by="alice")
    assert Registry.get_by_id(registry.id).status == "deleting"
    run_all(runner)
    failed = state(op)
    assert failed.state == "failed" and failed.error.startswith("delete_blobs:")
    assert [s["state"] for s in json.loads(failed.steps)] == ["succeeded", "succeeded", "failed", "pending"]
    assert Registry.get_by_id(registry.id).status == "deleting"  # still refused by the data plane
    store.broken = False
    again = operations.request_delete(Registry.get_by_id(registry.id))  # asking again resumes it
    assert again.id == op.id
    run_all(runner)
    assert state(op).state == "succeeded"
    assert provisioner.calls.count("destroy") == 1  # the finished step was not run again
    assert Registry.get_or_none(Registry.id == registry.id) is None
    assert not any(store.blob_size(k) is not None for k in keys)
    assert list(store.list_blobs(f"{registry.id}/")) == []
    assert not (store.uploads / "11111111-0000-0000-0000-000000000000").exists()
    assert AccessToken.select().where(AccessToken.registry == registry.id).count() == 0
    assert state(op).registry_id is None and state(op).registry_name == "images"


def test_an_operation_whose_worker_died_is_resumed_by_another(world):
    org, store, provisioner, runner = world
    registry, op = operations.request_create(org, "images")
    clock = FakeClock()
    settings = RunnerSettings(domain="registry.test", lease=dt.timedelta(seconds=30), backoff_base=0)
    dying = OperationRunner(provisioner, store, settings, owner="worker-a", clock=clock)
    claimed = dying.claim()  # worker A takes it ... and dies before running it
    assert claimed.id == op.id and state(op).lease_owner == "worker-a"
    other = OperationRunner(provisioner, store, settings, owner="worker-b", clock=clock)
    clock.advance(29.9)
    assert other.claim() is None  # the lease still holds
    clock.advance(0.2)
    run_all(other)
    done = state(op)
    assert done.state == "succeeded" and "resuming: the worker running it stopped" in done.log
    assert Registry.get_by_id(registry.id).status == "ready"


def test_one_operation_per_registry(world):
    org, store, provisioner, runner = world
    registry, create = operations.request_create(org, "images")
    # A delete while the create is still queued supersedes it.
    delete = operations.request_delete(registry)
    assert state(create).state == "failed" and "superseded" in state(create).error
    with pytest.raises(RegistryError) as e:
        operations.retry(state(create))
    assert e.value.code == "CONFLICT"
    with pytest.raises(RegistryError):
        operations.retry(state(delete))  # not failed
    run_all(runner)
    assert state(delete).state == "succeeded"


def test_each_operation_and_step_is_a_span(world):
    """Spans go to the OpenTelemetry SDK's in-memory exporter."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app.telemetry import tracing

    org, _, _, runner = world
    exporter = InMemorySpanExporter()
    tracing.setup(exporter, SimpleSpanProcessor)
    try:
        operations.request_create(org, "images")
        run_all(runner)
    finally:
        tracing.setup(None)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {"lifecycle.create", "lifecycle.step.provision", "lifecycle.step.activate"} <= set(spans)
    parent = spans["lifecycle.create"]
    assert spans["lifecycle.step.provision"].parent.span_id == parent.context.span_id
    assert parent.attributes["berth.registry"] == "images"


@pytest.mark.parametrize("fail_at", ["provision", "destroy", "delete_uploads", "delete_blobs"])
def test_a_failure_at_any_step_is_recorded_and_retry_finishes(world, fail_at):
    org, store, provisioner, runner = world
    registry, create = operations.request_create(org, "images")
    if fail_at == "provision":
        provisioner.fail("provision")
    run_all(runner)
    if fail_at == "provision":
        assert state(create).state == "failed" and state(create).error.startswith("provision:")
        operations.retry(state(create))
        run_all(runner)
    assert state(create).state == "succeeded"
    _fill(registry, store)
    if fail_at == "destroy":
        provisioner.fail("destroy")
    broken = {"delete_uploads": "delete_upload", "delete_blobs": "delete_blob"}.get(fail_at)
    original = getattr(store, broken) if broken else None
    if broken:

        def fail(*_):
            raise OSError(f"{broken} broke on purpose")

        setattr(store, broken, fail)
    delete = operations.request_delete(Registry.get_by_id(registry.id))
    run_all(runner)
    if fail_at != "provision":
        failed = state(delete)
        assert failed.state == "failed" and failed.error.startswith(f"{fail_at}:")
        steps = {s["name"]: s["state"] for s in json.loads(failed.steps)}
        assert steps[fail_at] == "failed" and steps["delete_metadata"] == "pending"
        assert Registry.get_by_id(registry.id).status == "deleting"
        if broken:
            setattr(store, broken, original)
        operations.retry(failed)
        run_all(runner)
    assert state(delete).state == "succeeded"
    assert Registry.get_or_none(Registry.id == registry.id) is None
    assert list(store.list_blobs(f"{registry.id}/")) == []


def test_a_delete_asked_for_after_the_worker_removed_the_registry_is_not_found(world):
    org, store, provisioner, runner = world
    registry, _ = operations.request_create(org, "images")
    run_all(runner)
    looked_up = Registry.get_by_id(registry.id)  # what the API gate found a moment earlier
    operations.request_delete(looked_up)
    run_all(runner)  # the worker deletes it meanwhile
    with pytest.raises(RegistryError) as e:
        operations.request_delete(looked_up)
    assert e.value.code == "NOT_FOUND"
