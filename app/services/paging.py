"""One page of a list: the rows after a key, at most `limit` of them, and the key to go on from.

Keyset, not offset: a page starts after the sort key of the last row of the one before, so rows
inserted or removed while a client pages (concurrent pushes) never shift, repeat or skip the
others. The management API turns `?limit=&cursor=` into a `Page` and the `next_key` back into a
cursor (app/api/pagination.py); the services that list apply it to their own queries here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import peewee as pw

from app.spec.errors import RegistryError


@dataclass(frozen=True)
class Page:
    """Which rows: at most `limit`, those whose key comes after `after` (None: from the first)."""

    limit: int
    after: int | str | None = None


@dataclass
class Rows:
    """One page's rows; `next_key` is the key to start the next page after (None: the last page)."""

    items: list
    next_key: int | str | None
    limit: int


def refused_cursor() -> RegistryError:
    return RegistryError("INVALID", "cursor is not one this server issued; start again without it", field="cursor")


def keyset(query: pw.ModelSelect, key: pw.Field, page: Page, *, descending: bool = False) -> Rows:
    """One page of `query` ordered by the unique `key` field."""
    if page.after is not None:
        if type(page.after) is not (int if isinstance(key, pw.IntegerField) else str):
            raise refused_cursor()  # a key of another list's type: never one this list issued
        query = query.where(key < page.after if descending else key > page.after)
    rows = list(query.order_by(key.desc() if descending else key).limit(page.limit + 1))
    return _cut(rows, page.limit, lambda row: getattr(row, key.name))


def sorted_list(items: list, key_of: Callable, page: Page) -> Rows:
    """A page of an already sorted in-memory list of `str` keys (e.g. the folder tree)."""
    if page.after is not None:
        if type(page.after) is not str:
            raise refused_cursor()
        items = [i for i in items if key_of(i) > page.after]
    return _cut(items, page.limit, key_of)


def _cut(items: list, limit: int, key_of: Callable) -> Rows:
    more = len(items) > limit
    items = items[:limit]
    return Rows(items, key_of(items[-1]) if more and items else None, limit)
