"""Cursor pagination for `/api/v1` lists: `?limit=N&cursor=C`, a `next_cursor` in the body and
a `Link: <...>; rel="next"` header.

Keyset, not offset: the cursor is the sort key of the last item returned, so rows inserted or
removed while a client pages (concurrent pushes) never shift, repeat or skip the others. This
module reads and writes the HTTP side (limit, cursor, Link); the services apply the page to their
queries (app/services/paging.py).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import falcon

from app import untrusted_json
from app.edge import media
from app.services import paging
from app.spec.errors import RegistryError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


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
        raise paging.refused_cursor()
    return after


def _is_key(value, kind: type) -> bool:
    if kind is int:  # what an integer column can hold (bool is an int too, but no key)
        return type(value) is int and -(2**63) <= value < 2**63
    # Printable: no NUL (PostgreSQL refuses it in text) and no lone surrogate (not encodable).
    return type(value) is str and value.isprintable()


def page_of(req: falcon.Request, kind: type) -> paging.Page:
    """The page a list request asks for; `kind` is the type of the list's key (`int` or `str`)."""
    return paging.Page(limit_of(req), decode(req, kind))


def next_cursor(rows: paging.Rows) -> str | None:
    return encode(rows.next_key) if rows.next_key is not None else None


def body(name: str, items: list, rows: paging.Rows) -> dict:
    return {name: items, "next_cursor": next_cursor(rows)}


def link(req: falcon.Request, resp: falcon.Response, rows: paging.Rows) -> None:
    cursor = next_cursor(rows)
    if cursor:
        params = {k: v for k, v in req.params.items() if k not in ("cursor", "limit")}
        params.update(limit=str(rows.limit), cursor=cursor)
        resp.append_header("Link", f'<{req.path}?{urlencode(params)}>; rel="next"')
