"""Registry lifecycle operations: what is asked (create, delete), and carrying it out.

A request only records its intent — the registry row in `provisioning` or `deleting`, and a
`pending` operation — and answers 202. The worker (app.lifecycle.worker) claims operations and
runs their steps. Every step is idempotent, and finished steps are recorded, so an operation
interrupted by a crash is resumed by whichever worker claims it next (its lease expired), and a
failed one can be retried. One operation per registry is active at a time.

    create:  provision (pull token + Kubernetes footprint) -> activate     registry: provisioning -> ready | failed
    update:  provision (the footprint again, e.g. its custom domain)       registry: unchanged
    delete:  destroy -> delete_uploads -> delete_blobs -> delete_metadata   registry: deleting -> (gone)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import peewee as pw

from app.auth.token_secrets import generate_token, hash_token
from app.clock import SYSTEM, Clock
from app.db.models import AccessToken, Operation, Organization, Registry, Repository, Upload, utcnow
from app.db.setup import transaction
from app.lifecycle.provisioner import Provisioner, ProvisionError, RegistrySpec
from app.services import custom_domains, registries
from app.spec.errors import RegistryError
from app.storage.base import BlobStore
from app.telemetry.tracing import tracer

log = logging.getLogger("berth.lifecycle")

STEPS = {
    "create": ("provision", "activate"),
    "update": ("provision",),
    "delete": ("destroy", "delete_uploads", "delete_blobs", "delete_metadata"),
}
ACTIVE = ("pending", "running")
STATES = ("pending", "running", "succeeded", "failed")
PULL_SECRET_TOKEN = "pull-secret"
MAX_LOG_CHARS = 200_000


def _new(org: Organization, registry: Registry, kind: str, requested_by: str | None) -> Operation:
    active = Operation.select().where((Operation.registry_name == registry.name) & Operation.state.in_(ACTIVE)).first()
    if active is not None:
        raise RegistryError(
            "CONFLICT",
            f"registry {registry.name!r} has a {active.kind} operation in progress "
            f"({active.id}); wait for it to finish",
        )
    steps = [{"name": name, "state": "pending"} for name in STEPS[kind]]
    return Operation.create(
        id=str(uuid.uuid4()),
        org=org,
        registry=registry,
        registry_name=registry.name,
        kind=kind,
        steps=json.dumps(steps),
        requested_by=requested_by,
        log=_line(f"{kind} requested by {requested_by or 'unknown'}"),
    )


def request_create(
    org: Organization,
    name: str,
    *,
    visibility: str = "private",
    requested_by: str | None = None,
    custom_domain: str | None = None,
    pull_namespaces: list[str] | None = None,
    platform_domain: str = "",
) -> tuple[Registry, Operation]:
    """A new registry in `provisioning`, and the operation that provisions it."""
    with transaction():
        registry = registries.create_registry(
            org,
            name,
            visibility,
            requested_by,
            status="provisioning",
            custom_domain=custom_domain,
            pull_namespaces=pull_namespaces,
            platform_domain=platform_domain,
        )
        return registry, _new(org, registry, "create", requested_by)


def request_change(
    registry: Registry, changes: dict, *, role: str | None, requested_by: str | None, platform_domain: str = ""
) -> tuple[Registry, Operation | None]:
    """Apply a PATCH, and when it changes what the footprint routes (the verified custom domain
    goes or is replaced), queue the update that re-provisions it, in one transaction: the old
    name's listener, route and certificate go with it."""
    with transaction():
        routed_before = custom_domains.routed(registry)
        registry = registries.update_registry(registry, changes, role=role, platform_domain=platform_domain)
        if custom_domains.routed(registry) == routed_before:
            return registry, None
        return registry, _new(registry.org, registry, "update", requested_by)


def request_domain_verification(
    registry: Registry, verifier: custom_domains.DomainVerifier, requested_by: str | None = None
) -> tuple[Registry, Operation | None]:
    """Look up the claim's TXT record; when it holds the challenge, mark the domain verified and
    queue the update that routes it. Already verified: nothing to do (no operation)."""
    record = custom_domains.challenge(registry)
    if record is None:
        raise RegistryError(
            "CONFLICT",
            f"registry {registry.name!r} has no custom domain to verify: set one first (PATCH custom_domain)",
            field="custom_domain",
        )
    if registry.custom_domain_verified_at is not None:
        return registry, None
    if not verifier.holds(registry.custom_domain, record["value"]):
        raise RegistryError(
            "CONFLICT",
            f"the TXT record {record['name']} does not hold {record['value']!r} (yet): "
            "publish it, then verify again (DNS changes can take a few minutes to show)",
            field="custom_domain",
        )
    with transaction():
        marked = (
            Registry.update(custom_domain_verified_at=utcnow())
            .where(
                (Registry.id == registry.id)
                & (Registry.custom_domain == registry.custom_domain)
                & (Registry.custom_domain_challenge == registry.custom_domain_challenge)
                & Registry.custom_domain_verified_at.is_null()
                & (Registry.status != "deleting")
            )
            .execute()
        )
        if marked != 1:
            raise RegistryError("CONFLICT", "the registry's custom domain changed while it was verified; try again")
        registry = Registry.get_by_id(registry.id)
        return registry, _new(registry.org, registry, "update", requested_by)


def request_delete(registry: Registry, requested_by: str | None = None) -> Operation:
    """Mark the registry `deleting` (the data plane stops answering for it at once) and queue
    its deletion. Asking again while it is queued or running returns the same operation."""
    with transaction():
        name = registry.name
        registry = Registry.get_or_none(Registry.id == registry.id)
        if registry is None:  # deleted by the worker since the caller looked it up
            raise RegistryError("NOT_FOUND", f"registry {name!r} not found")
        active = (
            Operation.select().where((Operation.registry_name == registry.name) & Operation.state.in_(ACTIVE)).first()
        )
        if active is not None and active.kind == "delete":
            return active
        if active is not None:  # a create still running: its registry is replaced by the delete
            _finish(active, "failed", error="superseded by a delete request")
        Registry.update(status="deleting").where(Registry.id == registry.id).execute()
        failed_delete = (
            Operation.select()
            .where((Operation.registry == registry) & (Operation.kind == "delete") & (Operation.state == "failed"))
            .first()
        )
        if failed_delete is not None:  # resume the earlier attempt rather than start over
            return _reset(failed_delete, f"delete requested again by {requested_by or 'unknown'}")
        return _new(registry.org, registry, "delete", requested_by)


def retry(operation: Operation, requested_by: str | None = None) -> Operation:
    """Run a failed operation again from its first unfinished step."""
    with transaction():
        operation = Operation.get_by_id(operation.id)
        if operation.state != "failed":
            raise RegistryError(
                "CONFLICT", f"operation {operation.id} is {operation.state}; only a failed operation can be retried"
            )
        if operation.registry_id is None:
            raise RegistryError("CONFLICT", "its registry no longer exists; create it again instead")
        active = (
            Operation.select()
            .where((Operation.registry_name == operation.registry_name) & Operation.state.in_(ACTIVE))
            .first()
        )
        if active is not None:
            raise RegistryError("CONFLICT", f"operation {active.id} is already in progress for this registry")
        if operation.kind == "create":
            Registry.update(status="provisioning").where(Registry.id == operation.registry_id).execute()
        return _reset(operation, f"retry requested by {requested_by or 'unknown'}")


def _reset(operation: Operation, message: str) -> Operation:
    steps = [{**s, "state": "pending"} if s["state"] != "succeeded" else s for s in json.loads(operation.steps)]
    Operation.update(
        state="pending",
        attempts=0,
        error=None,
        next_attempt_at=utcnow(),
        finished_at=None,
        lease_owner=None,
        lease_until=None,
        steps=json.dumps(steps),
        updated_at=utcnow(),
        log=Operation.log.concat(_line(message)),
    ).where(Operation.id == operation.id).execute()
    return Operation.get_by_id(operation.id)


def _finish(operation: Operation, state: str, error: str | None = None) -> None:
    Operation.update(
        state=state,
        error=error,
        finished_at=utcnow(),
        updated_at=utcnow(),
        lease_owner=None,
        lease_until=None,
        log=Operation.log.concat(_line(f"{state}" + (f": {error}" if error else ""))),
    ).where(Operation.id == operation.id).execute()


def _line(message: str) -> str:
    return f"{utcnow().isoformat(timespec='milliseconds')}Z {message}\n"


def find(operation_id: str) -> Operation | None:
    return Operation.get_or_none(Operation.id == operation_id)


def latest(registry: Registry) -> Operation | None:
    """The registry's most recent operation, whatever its state."""
    return Operation.select().where(Operation.registry == registry).order_by(Operation.created_at.desc()).first()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


# --- running operations --------------------------------------------------------------------


@dataclass
class RunnerSettings:
    domain: str
    lease: dt.timedelta = dt.timedelta(seconds=30)
    max_attempts: int = 5
    backoff_base: float = 2.0  # seconds; doubled per attempt
    backoff_max: float = 300.0


class OperationRunner:
    """Claims due operations and runs their steps. Safe with several workers (replicas): an
    operation is claimed with a compare-and-set on its state and lease."""

    def __init__(
        self, provisioner: Provisioner, store: BlobStore, settings: RunnerSettings, owner: str, clock: Clock = SYSTEM
    ) -> None:
        self.provisioner = provisioner
        self.store = store
        self.settings = settings
        self.owner = owner
        self.clock = clock  # what is due, and leases (the log's and steps' timestamps read the system clock)

    def due(self) -> pw.Expression:
        now = self.clock.utcnow()
        return ((Operation.state == "pending") & (Operation.next_attempt_at <= now)) | (
            (Operation.state == "running") & (Operation.lease_until < now)
        )

    def claim(self) -> Operation | None:
        for candidate in (
            Operation.select(Operation.id, Operation.state).where(self.due()).order_by(Operation.created_at).limit(5)
        ):
            resumed = candidate.state == "running"
            with transaction():
                claimed = (
                    Operation.update(
                        state="running",
                        lease_owner=self.owner,
                        lease_until=self.clock.utcnow() + self.settings.lease,
                        attempts=Operation.attempts + 1,
                        updated_at=utcnow(),
                        log=Operation.log.concat(
                            _line(
                                "resuming: the worker running it stopped (lease expired)"
                                if resumed
                                else f"started by worker {self.owner}"
                            )
                        ),
                    )
                    .where((Operation.id == candidate.id) & self.due())
                    .execute()
                )
            if claimed == 1:
                return Operation.get_by_id(candidate.id)
        return None

    def renew(self, operation: Operation) -> bool:
        """Extend this worker's lease; False when another worker has taken the operation over."""
        return (
            Operation.update(lease_until=self.clock.utcnow() + self.settings.lease, updated_at=utcnow())
            .where(
                (Operation.id == operation.id) & (Operation.lease_owner == self.owner) & (Operation.state == "running")
            )
            .execute()
            == 1
        )

    def run_next(self) -> Operation | None:
        operation = self.claim()
        if operation is not None:
            self.run(operation)
        return operation

    def run(self, operation: Operation) -> None:
        with _Heartbeat(self, operation):
            self._run(operation)

    def _run(self, operation: Operation) -> None:
        steps = json.loads(operation.steps)
        progress = self._logger(operation)
        with tracer().start_as_current_span(
            f"lifecycle.{operation.kind}",
            attributes={"berth.operation": operation.id, "berth.registry": operation.registry_name},
        ):
            for step in steps:
                if step["state"] == "succeeded":
                    continue
                step.update(state="running", started_at=_iso(utcnow()))
                self._save_steps(operation, steps)
                progress(f"step {step['name']}: started", step=step["name"], state="running")
                try:
                    with tracer().start_as_current_span(f"lifecycle.step.{step['name']}"):
                        getattr(self, f"_{operation.kind}_{step['name']}")(operation, progress)
                except Exception as exc:  # noqa: BLE001 - every failure is recorded on the operation
                    step.update(state="failed", finished_at=_iso(utcnow()))
                    self._save_steps(operation, steps)
                    self._failed(operation, step["name"], exc, progress)
                    return
                step.update(state="succeeded", finished_at=_iso(utcnow()))
                self._save_steps(operation, steps)
                progress(f"step {step['name']}: done", step=step["name"], state="succeeded")
                if not self.renew(operation):
                    progress("lease lost to another worker; stopping here", step=step["name"], state="interrupted")
                    return
        _finish(operation, "succeeded")
        log.info(
            "operation succeeded",
            extra={
                "operation": operation.id,
                "kind": operation.kind,
                "registry": operation.registry_name,
                "state": "succeeded",
            },
        )

    def _failed(self, operation: Operation, step: str, exc: Exception, progress: Callable) -> None:
        transient = isinstance(exc, ProvisionError) and exc.transient
        message = str(exc) or exc.__class__.__name__
        attempts = Operation.get_by_id(operation.id).attempts
        if transient and attempts < self.settings.max_attempts:
            delay = min(self.settings.backoff_base * 2 ** (attempts - 1), self.settings.backoff_max)
            progress(
                f"step {step}: transient failure ({message}); retrying in {delay:.0f}s "
                f"(attempt {attempts} of {self.settings.max_attempts})",
                step=step,
                state="retrying",
            )
            Operation.update(
                state="pending",
                next_attempt_at=self.clock.utcnow() + dt.timedelta(seconds=delay),
                lease_owner=None,
                lease_until=None,
                updated_at=utcnow(),
            ).where(Operation.id == operation.id).execute()
            return
        if not isinstance(exc, ProvisionError):
            log.exception("operation %s step %s failed", operation.id, step)
        progress(f"step {step}: failed: {message}", step=step, state="failed")
        _finish(operation, "failed", error=f"{step}: {message}")
        if operation.kind == "create" and operation.registry_id is not None:
            Registry.update(status="failed").where(
                (Registry.id == operation.registry_id) & (Registry.status == "provisioning")
            ).execute()

    def _logger(self, operation: Operation) -> Callable[..., None]:
        def progress(message: str, *, step: str | None = None, state: str | None = None) -> None:
            for line in str(message).splitlines() or [""]:
                # The stored log stops growing at MAX_LOG_CHARS; the JSON log line below still goes out.
                Operation.update(log=Operation.log.concat(_line(line)), updated_at=utcnow()).where(
                    (Operation.id == operation.id) & (pw.fn.LENGTH(Operation.log) < MAX_LOG_CHARS)
                ).execute()
            log.info(
                message,
                extra={
                    "operation": operation.id,
                    "kind": operation.kind,
                    "registry": operation.registry_name,
                    "step": step,
                    "state": state,
                },
            )

        return progress

    def _save_steps(self, operation: Operation, steps: list[dict]) -> None:
        Operation.update(steps=json.dumps(steps), updated_at=utcnow()).where(Operation.id == operation.id).execute()

    def _spec(self, registry: Registry, pull_token: str = "") -> RegistrySpec:
        hostname = f"{registry.name}.{self.settings.domain}"
        return RegistrySpec(
            org=registry.org.name,
            name=registry.name,
            hostname=hostname,
            visibility=registry.visibility,
            custom_domain=custom_domains.routed(registry),
            pull_namespaces=tuple(registries.pull_namespaces(registry)),
            pull_username=PULL_SECRET_TOKEN,
            pull_token=pull_token,
            server=hostname,
        )

    def _registry(self, operation: Operation) -> Registry:
        registry = Registry.get_or_none(Registry.id == operation.registry_id) if operation.registry_id else None
        if registry is None:
            raise ProvisionError("the registry no longer exists")
        return registry

    # create

    def _create_provision(self, operation: Operation, progress: Callable) -> None:
        registry = self._registry(operation)
        secret = generate_token()
        with transaction():  # one live pull-secret token per registry: the newest
            AccessToken.update(revoked_at=utcnow()).where(
                (AccessToken.registry == registry)
                & (AccessToken.name == PULL_SECRET_TOKEN)
                & AccessToken.revoked_at.is_null()
            ).execute()
            AccessToken.create(
                org=registry.org_id,
                registry=registry,
                name=PULL_SECRET_TOKEN,
                token_hash=hash_token(secret),
                role="reader",
                created_by=f"operation:{operation.id}",
            )
        progress("issued the pull-only token for the pull Secret")
        outputs = self.provisioner.provision(self._spec(registry, secret), progress)
        progress("outputs: " + json.dumps({k: v for k, v in outputs.items()}, sort_keys=True))

    def _update_provision(self, operation: Operation, progress: Callable) -> None:
        self._create_provision(operation, progress)

    def _create_activate(self, operation: Operation, progress: Callable) -> None:
        Registry.update(status="ready").where(
            (Registry.id == operation.registry_id) & (Registry.status.in_(("provisioning", "failed")))
        ).execute()

    # delete

    def _delete_destroy(self, operation: Operation, progress: Callable) -> None:
        self.provisioner.destroy(self._spec(self._registry(operation)), progress)

    def _delete_delete_uploads(self, operation: Operation, progress: Callable) -> None:
        registry = self._registry(operation)
        ids = [u.id for u in Upload.select(Upload.id).join(Repository).where(Repository.registry == registry)]
        for upload_id in ids:
            self.store.delete_upload(upload_id)
        progress(f"removed {len(ids)} upload session(s)")

    def _delete_delete_blobs(self, operation: Operation, progress: Callable) -> None:
        registry = self._registry(operation)
        count = total = 0
        for key, size in self.store.list_blobs(f"{registry.id}/"):
            self.store.delete_blob(key)
            count, total = count + 1, total + size
            if count % 1000 == 0:
                progress(f"removed {count} blobs so far")
                self.renew(operation)
        progress(f"removed {count} blob(s), {total} bytes")

    def _delete_delete_metadata(self, operation: Operation, progress: Callable) -> None:
        registry = Registry.get_or_none(Registry.id == operation.registry_id) if operation.registry_id else None
        if registry is None:
            progress("registry metadata already removed")
            return
        with transaction():
            # Foreign keys cascade: repositories, blobs, manifests, tags, uploads, tokens.
            registry.delete_instance()
        progress(f"removed registry {operation.registry_name!r} and everything it held")


class _Heartbeat:
    """Renews a running operation's lease while a long step (a Pulumi `up`) runs."""

    def __init__(self, runner: OperationRunner, operation: Operation) -> None:
        self.runner, self.operation = runner, operation
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"lease-{operation.id[:8]}", daemon=True)

    def _beat(self) -> None:
        interval = max(self.runner.settings.lease.total_seconds() / 3, 0.2)
        while not self.stop.wait(interval):
            try:
                if not self.runner.renew(self.operation):
                    return
            except pw.PeeweeException:
                log.warning("could not renew the lease of operation %s", self.operation.id)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
