"""Paginated listings of the data plane: tags of a repository, repositories of registries.

Both are in lexical (byte) order and paginate with `n` (page size) and `last` (the last item of
the previous page), as the distribution spec requires.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict

import peewee as pw

from app.db.models import Registry, Repository, Tag
from app.db.prepared import Prepared


_TAGS_AFTER = Prepared(
    lambda repo, last: Tag.select(Tag.name).where((Tag.repository == repo) & (Tag.name > last)).order_by(Tag.name),
    "is",
)


# What a repository's tags look like now, in one indexed aggregate: any tag pushed, moved or
# deleted changes it (a push sets `updated_at` to now; a delete lowers the count; an insert that
# reuses a deleted row's id still raises the newest `updated_at`). Every process and replica
# computes it from the database, so a cached list is never served after the tags changed.
_TAGS_STAMP = Prepared(
    lambda repo: Tag.select(pw.fn.COUNT(Tag.id), pw.fn.MAX(Tag.id), pw.fn.MAX(Tag.updated_at))
    .where(Tag.repository == repo),
    "i",
)
CACHED_TAG_NAMES = 100_000  # tag names this process keeps in all (about 6 MiB)
MIN_CACHED_TAGS = 256  # below this, listing costs less than keeping it


class _TagCache:
    def __init__(self) -> None:
        self._lists: OrderedDict[int, tuple[tuple, list[str]]] = OrderedDict()
        self._lock = threading.Lock()
        self.big: set[int] = set()  # repositories seen with MIN_CACHED_TAGS tags or more

    def get(self, repository_id: int, stamp: tuple) -> list[str] | None:
        with self._lock:
            hit = self._lists.get(repository_id)
            if hit is None or hit[0] != stamp:
                return None
            self._lists.move_to_end(repository_id)
            return hit[1]

    def put(self, repository_id: int, stamp: tuple, names: list[str]) -> None:
        if len(names) > CACHED_TAG_NAMES:
            return
        with self._lock:
            self._lists[repository_id] = (stamp, names)
            self._lists.move_to_end(repository_id)
            while sum(len(v[1]) for v in self._lists.values()) > CACHED_TAG_NAMES:
                self._lists.popitem(last=False)


_tag_cache = _TagCache()


def tags(repository: Repository, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """(page, more): up to `n` tag names after `last`, and whether more follow. Repositories
    with many tags are listed from this process's cache once seen, checked against the
    database's stamp of their tags every time; others cost one query, as before."""
    if repository.id not in _tag_cache.big:
        cursor = _TAGS_AFTER.cursor(repository.id, last or "")
        rows = cursor.fetchall() if n is None else cursor.fetchmany(n + 1)
        if not last and n is None and len(rows) >= MIN_CACHED_TAGS:
            _tag_cache.big.add(repository.id)  # next time: through the cache
        return _page([row[0] for row in rows], n)
    stamp = tuple(_TAGS_STAMP.rows(repository.id)[0])  # before the list: a stale pair never forms
    names = _tag_cache.get(repository.id, stamp)
    if names is None:
        names = [row[0] for row in _TAGS_AFTER.rows(repository.id, "")]
        _tag_cache.put(repository.id, stamp, names)
    start = bisect.bisect_right(names, last) if last else 0
    return _page(names[start:] if n is None else names[start:start + n + 1], n)


def repositories(registries: list[Registry], prefixed: bool, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Repositories of the given registries; named `<registry>/<repo>` when `prefixed`."""
    if not registries:
        return [], False
    if prefixed:
        full = Registry.name.concat("/").concat(Repository.name)
        query = Repository.select(full.alias("full")).join(Registry)
    else:
        full = Repository.name
        query = Repository.select(full.alias("full"))
    query = query.where(Repository.registry.in_([r.id for r in registries]))
    if last:
        query = query.where(full > last)
    rows = _limit(query.order_by(full), n).tuples()
    return _page([row[0] for row in rows], n)


def _limit(query, n: int | None):
    return query if n is None else query.limit(n + 1)


def _page(items: list[str], n: int | None) -> tuple[list[str], bool]:
    if n is not None and len(items) > n:
        return items[:n], True
    return items, False
