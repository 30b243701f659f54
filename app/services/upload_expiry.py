"""Abandoned upload sessions: cancelled once idle for `BERTH_UPLOAD_EXPIRY`, by the running server.

An open session holds a row, a file of bytes that count against its registry's quota
(app/services/quotas.py) and one of its registry's session slots, so one a client walks away
from must not wait for the hourly garbage collection (or a restart) to go. Every `berth serve`
process runs an `UploadReaper` every tenth of the expiry (at most 15 minutes): a session lives
at most about 1.1 times the expiry past its last write. Garbage collection expires sessions the
same way (`expire_idle`), so `berth gc` and the API's collection report them as before.

Expiring a session races with a write to it. The row is deleted only while it is still idle
(`updated_at` before the cutoff), under the lock a write holds: on PostgreSQL the row lock a
write takes (the DELETE waits for it, then sees the new `updated_at`), on SQLite the store's
lock on the upload (taken first, before the database, in the order a write takes them). So a
chunk that is being written keeps its session; one that arrives after the session went is
answered BLOB_UPLOAD_UNKNOWN, as after a cancel. The session's (invisible) repository row goes
with it when nothing else holds it (app/services/repositories.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from app.db.models import Registry, Repository, Upload, utcnow
from app.db.setup import transaction
from app.services import repositories
from app.services.periodic import Periodic
from app.storage.base import BlobStore

log = logging.getLogger("berth.uploads")

LONGEST_INTERVAL = dt.timedelta(minutes=15)
SHORTEST_INTERVAL = dt.timedelta(seconds=1)


def reaper_interval(expiry: dt.timedelta) -> dt.timedelta:
    """How often idle sessions are looked for: a tenth of the expiry, within 1 s and 15 min."""
    return min(max(expiry / 10, SHORTEST_INTERVAL), LONGEST_INTERVAL)


def expire_idle(
    store: BlobStore,
    before: dt.datetime,
    *,
    registry: Registry | None = None,
    dry_run: bool = False,
    forget: Callable[[str], None] | None = None,
) -> int:
    """Cancel the upload sessions (of `registry`, or of all) last written before `before`, with
    their bytes and a repository row only they kept. Returns how many (would have) expired.
    `forget(upload_id)` drops what this process caches about an expired one."""
    query = Upload.select(Upload.id, Upload.repository).where(Upload.updated_at < before)
    if registry is not None:
        query = query.join(Repository).where(Repository.registry == registry)
    stale = list(query.tuples())  # read whole before writing (SQLite: no open cursor under a write)
    if dry_run:
        return len(stale)
    expired = 0
    for upload_id, repository_id in stale:
        with store.upload_lock(upload_id):
            with transaction():
                deleted = Upload.delete().where((Upload.id == upload_id) & (Upload.updated_at < before)).execute()
            if not deleted and Upload.select().where(Upload.id == upload_id).exists():
                continue  # written to since
            # Ours to delete, or ended meanwhile (finished, cancelled, expired elsewhere): then
            # this removes no more than the lock file taking the lock may have made again.
            store.delete_upload(upload_id)
        if not deleted:
            continue
        if forget is not None:
            forget(upload_id)
        repositories.discard_if_empty(repository_id)  # a row only this session kept
        expired += 1
    return expired


class UploadReaper(Periodic):
    """Expires idle upload sessions of every registry every `reaper_interval(expiry)`, in a
    background thread of `berth serve`. Replicas and workers may each run one: a session is
    deleted once, by whichever gets there first."""

    thread_name = "upload-reaper"

    def __init__(self, store: BlobStore, *, expiry: dt.timedelta, forget: Callable[[str], None] | None = None) -> None:
        super().__init__(reaper_interval(expiry))
        self.store = store
        self.expiry = expiry
        self.forget = forget

    def run_once(self) -> int:
        expired = expire_idle(self.store, utcnow() - self.expiry, forget=self.forget)
        if expired:
            log.info(
                "expired %d upload session(s) idle for more than %ss",
                expired,
                f"{self.expiry.total_seconds():g}",
                extra={"expired_uploads": expired},
            )
        return expired
