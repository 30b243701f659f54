"""Repositories inside a registry: lookup, creation on first push, and what makes one visible.

A repository is shown (catalog, browse tree, usage, tag list) only while it holds something
committed: a manifest, or a blob linked by a finished upload or a mount. Its row can exist
before that, because an upload session needs one to belong to; such a row is invisible, and it
is removed when its last session ends without committing anything (cancelled, refused, expired),
so a refused push leaves nothing behind. A manifest push creates the row inside its own
transaction, so a refused manifest never leaves one.

Removing a row races with pushes that are about to put something in it. `discard_if_empty`
locks the row before it looks (PostgreSQL: FOR UPDATE; SQLite: the write transaction), so a
push that committed first is seen and the row kept; a push that comes after fails on its
foreign key, and `committing` runs it again on a new row. Nothing a push committed is ever
removed with the row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import peewee as pw

from app.db.models import Manifest, Registry, Repository, RepositoryBlob, Upload, utcnow
from app.db.prepared import Prepared
from app.db.setup import atomically, is_postgres
from app.spec.errors import RegistryError

T = TypeVar("T")

_BY_NAME = Prepared(
    lambda registry_id, name: Repository.select().where(
        (Repository.registry == registry_id) & (Repository.name == name)
    ),
    "is",
    Repository,
)
# The new row, read back by the insert itself (none when another request made it first).
_INSERT = Prepared(
    lambda registry_id, name, now: (
        Repository.insert(registry=registry_id, name=name, created_at=now)
        .on_conflict_ignore()
        .returning(*Repository._meta.sorted_fields)
    ),
    "iss",
    Repository,
)
# A push whose repository row was removed under it runs again at most this often (a row is only
# removed while it holds nothing, so a second removal needs yet another refused push in between).
ATTEMPTS = 5


def _has_manifest() -> pw.Expression:
    return pw.fn.EXISTS(Manifest.select(pw.SQL("1")).where(Manifest.repository == Repository.id))


def _has_blob() -> pw.Expression:
    return pw.fn.EXISTS(RepositoryBlob.select(pw.SQL("1")).where(RepositoryBlob.repository == Repository.id))


def _has_upload() -> pw.Expression:
    return pw.fn.EXISTS(Upload.select(pw.SQL("1")).where(Upload.repository == Repository.id))


def visible() -> pw.Expression:
    """A condition on `Repository` rows: the repository holds something committed."""
    return _has_manifest() | _has_blob()


def is_visible(repository: Repository) -> bool:
    return Repository.select().where((Repository.id == repository.id) & visible()).exists()


def find(registry: Registry, name: str) -> Repository | None:
    """The repository's row, visible or not (an upload session in progress may hold it)."""
    return _BY_NAME.first(registry.id, name)


def get(registry: Registry, name: str) -> Repository:
    repository = find(registry, name)
    if repository is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found")
    return repository


def create(registry: Registry, name: str) -> Repository:
    """The repository's row, inserted (a caller that just found none): the insert returns it,
    and only when another request inserted it first is it read. NAME_UNKNOWN when the registry
    went meanwhile."""
    try:
        made = _INSERT.first(registry.id, name, utcnow())
    except pw.IntegrityError:
        made = None
    return made if made is not None else get(registry, name)


def committing(registry: Registry, name: str, work: Callable[[Repository | None], T]) -> T:
    """`work(repository)` for a push into the repository named `name` (None: no row yet; `work`
    creates it with `create`, where its push commits). When the row it was given is
    removed before `work` put anything in it (a refused push's cleanup: see the module
    docstring), `work` fails on the foreign key and is run again with what is there now."""
    for attempt in range(1, ATTEMPTS + 1):
        repository = find(registry, name)
        try:
            return work(repository)
        except pw.IntegrityError:
            if repository is not None and _exists(repository.id):
                raise  # the row is there: a conflict of another kind
            # The row `work` was given, or the one it made itself (found None), was removed first.
            if attempt == ATTEMPTS:
                raise RegistryError(
                    "UNAVAILABLE",
                    "the repository was changed by concurrent pushes; retry",
                    status=503,
                    headers={"Retry-After": "1"},
                ) from None
    raise AssertionError(f"ATTEMPTS must be at least 1, not {ATTEMPTS}")  # the last attempt returns or raises


def pushing(registry: Registry, name: str, work: Callable[[Repository], T]) -> T:
    """`committing`, for work that needs the row before it commits (an upload session, a mount):
    the row is made first, unseen until something is committed to it."""
    return committing(registry, name, lambda found: work(found or create(registry, name)))


def _exists(repository_id: int) -> bool:
    return Repository.select().where(Repository.id == repository_id).exists()


def discard_if_empty(repository_id: int) -> bool:
    """Remove the repository's row if it holds nothing and no upload session is open in it
    (called when a session ends without committing). True when it was removed."""
    holds = Repository.select().where((Repository.id == repository_id) & (visible() | _has_upload()))
    if holds.exists():
        return False  # the common case, decided without taking the row's lock

    def discard() -> bool:
        # Lock the row first: a push that is putting something in it (its foreign key check
        # holds the row's key-share lock) commits before the checks below, which then see it.
        locked = Repository.select(Repository.id).where(Repository.id == repository_id)
        if (locked.for_update() if is_postgres() else locked).first() is None:
            return False
        return bool(
            Repository.delete()
            .where((Repository.id == repository_id) & ~_has_manifest() & ~_has_blob() & ~_has_upload())
            .execute()
        )

    return atomically(discard)
