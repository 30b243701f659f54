"""Paginated listings of the data plane: tags of a repository, repositories of registries.

Both are in lexical (byte) order and paginate with `n` (page size) and `last` (the last item of
the previous page), as the distribution spec requires.
"""

from __future__ import annotations

from app.db.models import Registry, Repository, Tag
from app.db.prepared import Prepared


_TAGS_AFTER = Prepared(
    lambda repo, last: Tag.select(Tag.name).where((Tag.repository == repo) & (Tag.name > last)).order_by(Tag.name),
    "is",
)


def tags(repository: Repository, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """(page, more): up to `n` tag names after `last`, and whether more follow."""
    cursor = _TAGS_AFTER.cursor(repository.id, last or "")
    rows = cursor.fetchall() if n is None else cursor.fetchmany(n + 1)
    return _page([row[0] for row in rows], n)


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
