"""The composition root: every service, cache and background thread of a server process is
made here (`build_services`, `Runtime`), started by `Runtime.start` and stopped by
`Runtime.stop`, in one order, with one orderly shutdown.

Nothing below this package starts a thread of its own accord or keeps a process-wide service in a
module global: the traffic meter, the pull times, the tag-list cache, the spool and the periodic
jobs are instances held here and handed to whoever needs them. (The SKU catalog is the one
process-wide value: parsed from the settings here, once, and never changed after.)

The shutdown, once the HTTP server has stopped accepting and drained its requests
(app/server/process.py): the metrics listener stops answering, the background threads stop
(the operation worker, garbage collection, retention, upload expiry, the spool sweep, the
tag-list rebuilds), the buffered traffic counts and pull times are written, the spool directory
is removed, and the database connections are closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, cast

import peewee as pw

from app.auth.identity import Identity
from app.auth.idp import IdentityProvider, IdpSettings
from app.auth.keys import KeyRing
from app.auth.registry_tokens import RegistryTokens
from app.auth.throttle import LoginThrottle
from app.config import Settings
from app.counters import Counters
from app.counters.windows import WindowTable
from app.lifecycle.from_settings import open_provisioner
from app.lifecycle.operations import OperationRunner, RunnerSettings
from app.lifecycle.provisioner import Provisioner
from app.lifecycle.worker import Worker
from app.oci.token_endpoint import TokenService
from app.server.metrics_listener import MetricsListener
from app.server.spool import Spool
from app.server.spool_dirs import SpoolSweeper
from app.services import quotas, retention
from app.services.blobs import BlobService, touch_interval
from app.services.gc import Collector
from app.services.listings import TagLists
from app.services.manifests import ManifestService
from app.services.metering import Meter
from app.services.retention import PullTimes
from app.services.upload_expiry import UploadReaper
from app.services.uploads import UploadService
from app.services.wal_checkpoints import WalCheckpoints
from app.storage import open_store
from app.storage.base import BlobStore
from app.telemetry.tracing import TracedStore
from app.telemetry.tracing import enabled as tracing_enabled

log = logging.getLogger("berth.server")


@dataclass
class Services:
    store: BlobStore
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    identity: Identity
    token_service: TokenService
    provisioner: Provisioner
    worker: Worker  # resources wake it when they queue an operation
    collector: Collector  # periodic garbage collection
    retention_schedule: retention.Schedule  # periodic retention
    upload_reaper: UploadReaper  # expires idle upload sessions
    wal_checkpoints: WalCheckpoints  # SQLite: copies the write-ahead log back, off the write path
    counters: Counters  # rate-limit and login-failure counters (Redis, or the memory table the workers share)
    meter: Meter  # pull and push traffic, counted in memory and written in the background
    pull_times: PullTimes  # manifests' last pulls, written in the background
    tag_lists: TagLists  # large repositories' tag lists, shared by this machine's processes


def counters_uri(settings: Settings) -> str:
    """Where rate-limit and login-failure counters live: Redis when configured (shared by
    replicas), else memory: the table the `--workers` processes share, or this process's."""
    return settings.redis_url or "memory://"


def build_services(settings: Settings, counter_table: WindowTable | None = None) -> Services:
    """Every service of the application, made and wired, none started (Runtime.start does).
    `counter_table`: the memory counters the `--workers` supervisor made for its workers
    (app/server/workers.py), which their rate limits and login throttle share when Redis is not
    configured, and while it cannot be reached."""
    try:
        quotas.install(quotas.parse_catalog(settings.skus, settings.default_sku))
    except quotas.CatalogError as e:
        raise SystemExit(str(e)) from None
    store: BlobStore = open_store(settings.storage_url)
    if tracing_enabled():  # no per-call wrapper on the blob path when nothing is traced
        store = cast(BlobStore, TracedStore(store))  # a proxy that forwards every BlobStore method
    registry_tokens = RegistryTokens(KeyRing(settings.signing_keys_dir).load())
    idp = None
    if settings.oidc_jwks_url:
        idp = IdentityProvider(
            IdpSettings(
                settings.oidc_jwks_url,
                settings.oidc_issuer,
                settings.oidc_audience,
                settings.oidc_roles_claim,
                cooldown=settings.oidc_jwks_cooldown,
            )
        )
    counters = Counters(counters_uri(settings), counter_table)
    identity = Identity(registry_tokens, idp, LoginThrottle(settings.login_failure_limit, counters))
    provisioner = open_provisioner(settings)
    runner = OperationRunner(
        provisioner,
        store,
        RunnerSettings(
            domain=settings.domain,
            lease=dt.timedelta(seconds=settings.operation_lease),
            max_attempts=settings.operation_max_attempts,
        ),
        owner=f"{socket.gethostname()}:{os.getpid()}",
    )
    uploads = UploadService(store)
    tag_lists = TagLists(settings.data_dir / "cache" / "tags")
    grace = dt.timedelta(seconds=settings.gc_grace)
    upload_expiry = dt.timedelta(seconds=settings.upload_expiry)
    return Services(
        store=store,
        blobs=BlobService(store, redirect=settings.storage_redirect, gc_grace=grace),
        uploads=uploads,
        manifests=ManifestService(
            settings.max_manifest_bytes, settings.max_json_depth, tag_lists, touch_every=touch_interval(grace)
        ),
        identity=identity,
        token_service=TokenService(identity, registry_tokens, settings.domain),
        provisioner=provisioner,
        worker=Worker(runner, poll_interval=settings.operation_poll),
        collector=Collector(
            store, interval=dt.timedelta(seconds=settings.gc_interval), grace=grace, upload_expiry=upload_expiry
        ),
        retention_schedule=retention.Schedule(
            store,
            interval=dt.timedelta(seconds=settings.retention_interval),
            grace=grace,
            upload_expiry=upload_expiry,
            tag_lists=tag_lists,
        ),
        upload_reaper=UploadReaper(store, expiry=upload_expiry, forget=uploads.forget),
        wal_checkpoints=WalCheckpoints(),
        counters=counters,
        meter=Meter(),
        pull_times=PullTimes(),
        tag_lists=tag_lists,
    )


class Runtime:
    """One server process's services and the server-side pieces around them (the spool of
    request bodies and its sweep, the metrics listener), with their lifetime."""

    def __init__(
        self, settings: Settings, metrics: MetricsListener | None = None, services: Services | None = None
    ) -> None:
        self.settings = settings
        self.services = services or build_services(settings)
        self.metrics = metrics
        self.spool: Spool | None = None
        self.spool_sweeper: SpoolSweeper | None = None
        spool_root = self.services.store.spool_dir
        if spool_root is not None:
            self.spool = Spool(spool_root, self.services.uploads.start_hash)
            # Other processes' bodies left by a kill -9, found while this one runs (app/server/spool_dirs.py).
            self.spool_sweeper = SpoolSweeper(spool_root, None, settings.spool_sweep_interval)
        self._started: list = []
        self._threads_before: set[threading.Thread] = set()

    def open_spool(self) -> None:
        """Spool request bodies into this process's own directory (before the HTTP server is
        made: a body may arrive as soon as it listens)."""
        if self.spool is not None and self.spool.process_spool is None:
            self.spool.open()
            if self.spool_sweeper is not None:
                self.spool_sweeper.keep = self.spool.directory

    def start(self) -> Runtime:
        """Start every background thread: first what requests feed (traffic counts, pull times,
        tag-list rebuilds), then the periodic jobs, then the metrics listener."""
        self._threads_before = set(threading.enumerate())
        self.open_spool()
        s = self.services
        background: list[Any] = [
            s.meter,
            s.pull_times,
            s.tag_lists,
            s.worker,
            s.collector,
            s.retention_schedule,
            s.upload_reaper,
            s.wal_checkpoints,
        ]
        if self.spool_sweeper is not None:
            background.append(self.spool_sweeper)
        for part in background:
            part.start()
            self._started.append(part)
        if self.metrics is not None:
            self.metrics.serve()
        return self

    def stop(self) -> None:
        """The orderly shutdown, once the HTTP server has stopped: the metrics listener, every
        background thread in the reverse order of their start (the meter and the pull times
        write what they hold as they stop), the spool, then the database connections."""
        if self.metrics is not None:
            self.metrics.stop()
        while self._started:
            part = self._started.pop()
            try:
                part.stop()
            except Exception:  # noqa: BLE001 - the rest must still stop, and the counts be written
                log.exception("stopping %s failed", type(part).__name__)
        if self.spool is not None:
            self.spool.close()
        _close_database()

    def threads_left(self) -> list[threading.Thread]:
        """Threads started since `start` that are still running (none once `stop` returns)."""
        return [t for t in threading.enumerate() if t not in self._threads_before and t.is_alive()]


def _close_database() -> None:
    from app.db.models import database

    db = database.obj
    if db is None:
        return
    try:
        close_all = getattr(db, "close_all", None)
        close_all() if close_all else db.close()
    except pw.PeeweeException as e:  # a transaction left open on this thread: the exit closes it
        log.warning("closing the database: %s", e)
