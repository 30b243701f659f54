"""Metering: what a registry stores (read from the metadata at ask time, so always exact) and
the traffic it served (counted per repository per UTC day in `usage_day`).

Stored state:
- per registry: `stored_bytes` = the sum of its distinct blobs (a blob is stored once per
  registry whatever the number of repositories that link it), `blobs`, `repositories`, `tags`,
  `manifests`: exactly what pushes, deletes and garbage collection left in the database, which
  holds a row per blob file of the store;
- per repository: `stored_bytes` = the distinct blobs linked to it (a blob shared by two
  repositories counts in each, so these add up to at least the registry's), `blobs`, `tags`,
  `manifests`.

Traffic, added up in memory and written every FLUSH_SECONDS with `INSERT ... ON CONFLICT DO
UPDATE` of up to FLUSH_BATCH repository-days at a time (no write on the request path):
- a pull is a manifest GET (by tag or digest), as Docker Hub counts image pulls; its bytes,
  and those of every blob GET (200 or 206: the bytes sent; a 307 to the store: the blob's
  size), are `pull_bytes`. HEAD requests are not counted.
- a push is a manifest PUT; `push_bytes` are its bytes plus those of every blob upload that
  completed (the blob's size, counted once at the closing PUT or the monolithic POST, however
  many chunks it came in). Abandoned or refused uploads and mounts add nothing.
Counts are written once the responder succeeded; a database failure while counting is logged and
does not fail the request.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass

import peewee as pw
from peewee import EXCLUDED

from app.db.models import Blob, Manifest, Registry, Repository, RepositoryBlob, Tag, UsageDay
from app.db.prepared import PreparedFamily
from app.services.periodic import Periodic
from app.services.repositories import visible
from app.spec.errors import RegistryError

log = logging.getLogger("berth.metering")

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
MAX_DAYS = 366
DEFAULT_DAYS = 30


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# Traffic is added up in memory and written every FLUSH_SECONDS, one row per (registry,
# repository, day) that saw traffic, instead of a write per pull: a manifest GET stays a read.
# A process killed with -9 loses at most that many seconds of counts; stored state is unaffected.
FLUSH_SECONDS = 2.0
# Rows per statement. One upsert per row, built by peewee each time, was 12% of a worker's
# Python time while 10,000 new repositories were pushed on PostgreSQL (py-spy), and a round trip
# and a commit each.
FLUSH_BATCH = 64
_FIELDS = ("registry", "repository", "day", "pulls", "pull_bytes", "pushes", "push_bytes")  # a row's


def _upsert(n: int):
    def build(*v):
        width = len(_FIELDS)
        rows = [dict(zip(_FIELDS, v[width * i : width * (i + 1)], strict=True)) for i in range(n)]
        return UsageDay.insert_many(rows).on_conflict(
            conflict_target=[UsageDay.registry, UsageDay.repository, UsageDay.day],
            update={
                UsageDay.pulls: UsageDay.pulls + EXCLUDED.pulls,
                UsageDay.pull_bytes: UsageDay.pull_bytes + EXCLUDED.pull_bytes,
                UsageDay.pushes: UsageDay.pushes + EXCLUDED.pushes,
                UsageDay.push_bytes: UsageDay.push_bytes + EXCLUDED.push_bytes,
            },
        )

    return build


_UPSERT = PreparedFamily(_upsert, lambda n: "issiiii" * n, largest=FLUSH_BATCH)


class Meter(Periodic):
    """This process's traffic counts, written by a background thread every `flush_seconds`
    from `start` until `stop`, which writes what is left (the composition root's shutdown)."""

    thread_name = "metering-flush"

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(dt.timedelta(seconds=flush_seconds))
        self._pending: dict[tuple[int, str, dt.date], list[int]] = {}
        self._lock = threading.Lock()

    def count(
        self,
        registry_id: int,
        repository: str,
        *,
        pulls: int = 0,
        pull_bytes: int = 0,
        pushes: int = 0,
        push_bytes: int = 0,
    ) -> None:
        """Add to today's counters of one repository (in memory; `flush` writes them)."""
        with self._lock:
            counters = self._pending.setdefault((registry_id, repository, today()), [0, 0, 0, 0])
            counters[0] += pulls
            counters[1] += pull_bytes
            counters[2] += pushes
            counters[3] += push_bytes

    def run_once(self) -> None:
        self.flush()

    def stop(self) -> None:
        super().stop()
        self.flush()

    def flush(self) -> None:
        """Write the counts gathered so far: FLUSH_BATCH (registry, repository, day) rows per
        upsert, in key order (so that two processes' upserts of the same rows lock them in the
        same order on PostgreSQL, never crosswise). A batch naming a registry deleted meanwhile
        is written again row by row: that registry's counts go with it, the others' are kept."""
        with self._lock:
            batch, self._pending = self._pending, {}
        rows = sorted((key, counters) for key, counters in batch.items())
        for start in range(0, len(rows), FLUSH_BATCH):
            part = rows[start : start + FLUSH_BATCH]
            try:
                self._write(part)
            except pw.IntegrityError:
                for row in part:
                    try:
                        self._write([row])
                    except pw.IntegrityError:
                        pass  # the registry was deleted meanwhile: its counts go with it
                    except pw.PeeweeException:
                        log.exception("writing usage of %s in registry %s failed", row[0][1], row[0][0])
            except pw.PeeweeException:
                log.exception("writing the usage of %d repositories failed", len(part))

    @staticmethod
    def _write(rows: list) -> None:
        _UPSERT.of(len(rows)).cursor(*(v for key, counters in rows for v in (*key, *counters)))

    def traffic(self, registry: Registry, since: dt.date, until: dt.date, repository: str | None = None) -> list[dict]:
        """`traffic`, with this process's unwritten counts written first (other processes'
        within FLUSH_SECONDS)."""
        self.flush()
        return traffic(registry, since, until, repository)


# -- stored state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    stored_bytes: int
    blobs: int
    repositories: int
    tags: int
    manifests: int


def stored(registry: Registry) -> Stored:
    blobs, size = (
        Blob.select(pw.fn.COUNT(Blob.id), pw.fn.COALESCE(pw.fn.SUM(Blob.size), 0))
        .where(Blob.registry == registry)
        .tuples()
        .get()
    )
    repositories = Repository.select().where((Repository.registry == registry) & visible()).count()
    tags = Tag.select().join(Repository).where(Repository.registry == registry).count()
    manifests = Manifest.select().join(Repository).where(Repository.registry == registry).count()
    return Stored(
        stored_bytes=int(size or 0), blobs=int(blobs), repositories=repositories, tags=tags, manifests=manifests
    )


def repositories(registry: Registry, only: str | None = None) -> list[dict]:
    """Per repository, by name: stored bytes of its distinct blobs, blobs, tags, manifests."""
    query = Repository.select(Repository.id, Repository.name).where((Repository.registry == registry) & visible())
    if only is not None:
        query = query.where(Repository.name == only)
    rows = {
        r.id: {"name": r.name, "stored_bytes": 0, "blobs": 0, "tags": 0, "manifests": 0}
        for r in query.order_by(Repository.name)
    }
    if not rows:
        return []
    ids = list(rows)
    for repo_id, n, size in (
        RepositoryBlob.select(RepositoryBlob.repository, pw.fn.COUNT(Blob.id), pw.fn.SUM(Blob.size))
        .join(Blob)
        .where(RepositoryBlob.repository.in_(ids))
        .group_by(RepositoryBlob.repository)
        .tuples()
    ):
        rows[repo_id].update(blobs=int(n), stored_bytes=int(size or 0))
    for repo_id, n in (
        Tag.select(Tag.repository, pw.fn.COUNT(Tag.id)).where(Tag.repository.in_(ids)).group_by(Tag.repository).tuples()
    ):
        rows[repo_id]["tags"] = int(n)
    for repo_id, n in (
        Manifest.select(Manifest.repository, pw.fn.COUNT(Manifest.id))
        .where(Manifest.repository.in_(ids))
        .group_by(Manifest.repository)
        .tuples()
    ):
        rows[repo_id]["manifests"] = int(n)
    return sorted(rows.values(), key=lambda r: r["name"])


# -- traffic -------------------------------------------------------------------------------------


def parse_day(value: str | None, field: str) -> dt.date | None:
    """A UTC day, `YYYY-MM-DD`."""
    if value is None:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RegistryError("INVALID", f"{field} must be a day such as 2026-11-29", field=field) from None


def window(since: dt.date | None, until: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days asked for, both inclusive: by default the last 30 days up to today (UTC)."""
    until = until or today()
    since = since or until - dt.timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise RegistryError("INVALID", "since is after until", field="since")
    if (until - since).days + 1 > MAX_DAYS:
        raise RegistryError("INVALID", f"ask for at most {MAX_DAYS} days at a time", field="since")
    return since, until


COUNTERS = ("pulls", "pull_bytes", "pushes", "push_bytes")


def traffic(registry: Registry, since: dt.date, until: dt.date, repository: str | None = None) -> list[dict]:
    """Rows of (day, repository) with any traffic, by day then repository, as written so far
    (Meter.traffic writes this process's counts first)."""
    query = UsageDay.select().where((UsageDay.registry == registry) & (UsageDay.day >= since) & (UsageDay.day <= until))
    if repository is not None:
        query = query.where(UsageDay.repository == repository)
    out = []
    for row in query.order_by(UsageDay.day, UsageDay.repository):
        day = row.day if isinstance(row.day, dt.date) else dt.date.fromisoformat(str(row.day))
        out.append(
            {"day": day.isoformat(), "repository": row.repository, **{c: int(getattr(row, c)) for c in COUNTERS}}
        )
    return out


def totals(rows: list[dict]) -> dict:
    return {c: sum(r[c] for r in rows) for c in COUNTERS}
