"""Cursor pagination for `/api/v1` lists: `?limit=N&cursor=C`, a `next_cursor` in the body and
a `Link: <...>; rel="next"` header.

Keyset, not offset: the cursor is the sort key of the last item returned, so rows inserted or
removed while a client pages (concurrent pushes) never shift, repeat or skip the others.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import falcon
import peewee as pw

from app import untrusted_json
from app.api import media
from app.spec.errors import RegistryError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Page:
    items: list
    next_cursor: str | None
    limit: int


def limit_of(req: falcon.Request) -> int:
    raw = media.query(req, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    # isdigit() alone takes "²" and "①", which int() then refuses: ASCII digits only.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= MAX_LIMIT:
        raise RegistryError("INVALID", f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def encode(key) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(req: falcon.Request, kind: type):
    """The `cursor` parameter's key, of the list's key type (`int` or `str`); INVALID for
    anything else, since the client, not this server, may have written it."""
    raw = media.query(req, "cursor")
    if raw is None:
        return None
    try:
        after = untrusted_json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), max_depth=0)
    except ValueError:  # not base64 (binascii.Error), not JSON, not a scalar
        after = None
    if not _is_key(after, kind):
        raise RegistryError("INVALID", "cursor is not one this server issued; start again without it",
                            field="cursor")
    return after


def _is_key(value, kind: type) -> bool:
    if kind is int:  # what an integer column can hold (bool is an int too, but no key)
        return type(value) is int and -(2**63) <= value < 2**63
    # Printable: no NUL (PostgreSQL refuses it in text) and no lone surrogate (not encodable).
    return type(value) is str and value.isprintable()


def page(req: falcon.Request, key: pw.Field, query: pw.ModelSelect, *, descending: bool = False,
         key_of=None) -> Page:
    """One page of `query` ordered by the unique `key` field."""
    limit = limit_of(req)
    after = decode(req, int if isinstance(key, pw.IntegerField) else str)
    if after is not None:
        query = query.where(key < after if descending else key > after)
    rows = list(query.order_by(key.desc() if descending else key).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    key_of = key_of or (lambda row: getattr(row, key.name))
    return Page(rows, encode(key_of(rows[-1])) if more and rows else None, limit)


def slice_sorted(req: falcon.Request, items: list, key_of) -> Page:
    """A page of an already sorted in-memory list of `str` keys (e.g. the folder tree)."""
    limit = limit_of(req)
    after = decode(req, str)
    if after is not None:
        items = [i for i in items if key_of(i) > after]
    more = len(items) > limit
    items = items[:limit]
    return Page(items, encode(key_of(items[-1])) if more and items else None, limit)


def body(name: str, items: list, page_: Page) -> dict:
    return {name: items, "next_cursor": page_.next_cursor}


def link(req: falcon.Request, resp: falcon.Response, page_: Page) -> None:
    if page_.next_cursor:
        params = {k: v for k, v in req.params.items() if k not in ("cursor", "limit")}
        params.update(limit=page_.limit, cursor=page_.next_cursor)
        resp.append_header("Link", f'<{req.path}?{urlencode(params)}>; rel="next"')
