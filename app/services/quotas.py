"""Storage SKUs and the hard quota: the one place that decides whether a push may store bytes.

The catalog is configured with `BERTH_SKUS` (a JSON list, or the path of a file holding one;
the built-in `BUILTIN` otherwise). Each SKU has:

- `name`: what organizations and registries refer to (`Organization.sku`, `Registry.sku`);
- `included_bytes`: storage included in its price;
- `price_per_gib`: the monthly price of each GiB stored beyond that (null: no overage);
- `hard_limit_bytes`: the hard quota; null means none. A push whose blob would take the
  registry's stored bytes past it is refused with `DENIED` before the bytes are stored.

A registry's SKU is its own `sku` when set, else its organization's, else the catalog's
default (`BERTH_DEFAULT_SKU`, else the SKU marked `"default": true`, else the first). A name no
longer in the catalog reads as the default. The quota is per registry: stored bytes are the
registry's distinct blobs (`SUM(blob.size)`), exactly the bytes in its part of the blob store.

Bytes in flight count too: the bytes the registry's open upload sessions hold (their committed
offsets) are on disk as surely as its blobs, and an unfinished upload would otherwise be a way
around the limit (30 never-finished 9 MiB uploads under a 10 MiB limit). So a push is refused
when stored bytes + bytes held by open sessions + the request's bytes would pass the limit. The
usage numbers shown (`quota.used_bytes`) stay the stored blobs; the refusal says how much the
open sessions hold.

Where it is checked (app/oci/uploads.py, before any byte of the request is written), with one
query that sums both (and looks the digest up) at once:
- `POST .../uploads/?digest=` (monolithic): the body's Content-Length, unless the registry
  already holds that digest (a blob is stored once per registry);
- `PATCH` (a chunk): the chunk's length (the upload's bytes so far are among the held bytes;
  the digest is not known yet, so the chunk counts even if the blob turns out to be stored);
- `PUT ...?digest=` (finish): the last chunk, unless the digest is already stored; a refused
  finish cancels the upload.
Waitress reads a chunked (Transfer-Encoding) body whole before the app sees it and sets its
length, so every request has a Content-Length here. Concurrent requests each see the usage
before the other's bytes are committed, so together they may pass the limit by what they carry
at that moment (at most one request body per request thread).

Open sessions are also capped in number per registry (`BERTH_MAX_UPLOAD_SESSIONS`,
`check_new_session`): each holds a row and a file until it ends or expires
(app/services/upload_expiry.py), and a client that never finishes them should run out of
sessions, not the disk or the database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import peewee as pw

from app.db.models import Blob, Organization, Registry, Upload
from app.db.prepared import Prepared
from app.spec.errors import RegistryError

log = logging.getLogger("berth.quotas")

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


@dataclass(frozen=True)
class Sku:
    name: str
    title: str
    included_bytes: int
    hard_limit_bytes: int | None
    price_per_gib: float | None
    currency: str = "USD"


BUILTIN: list[Sku] = [
    Sku("free", "Free", included_bytes=1 * GiB, hard_limit_bytes=1 * GiB, price_per_gib=None),
    Sku("team", "Team", included_bytes=50 * GiB, hard_limit_bytes=500 * GiB, price_per_gib=0.10),
    Sku("enterprise", "Enterprise", included_bytes=1 * TiB, hard_limit_bytes=None, price_per_gib=0.05),
]
BUILTIN_DEFAULT = "team"


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Catalog:
    skus: tuple[Sku, ...]
    default: str

    def get(self, name: str | None) -> Sku | None:
        return next((s for s in self.skus if s.name == name), None)

    def resolve(self, name: str | None) -> Sku:
        sku = self.get(name)
        if sku is None:
            if name is not None:
                log.warning("SKU %r is not in the catalog; using the default %r", name, self.default)
            sku = self.get(self.default)
        assert sku is not None
        return sku

    def names(self) -> list[str]:
        return [s.name for s in self.skus]


@overload
def _nonnegative_int(entry: dict, key: str, where: str, *, nullable: Literal[False]) -> int: ...
@overload
def _nonnegative_int(entry: dict, key: str, where: str, *, nullable: bool) -> int | None: ...
def _nonnegative_int(entry: dict, key: str, where: str, *, nullable: bool) -> int | None:
    value = entry.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CatalogError(f"{where}: {key} must be a non-negative integer (bytes){' or null' if nullable else ''}")
    return value


def parse_catalog(raw: str, default: str = "") -> Catalog:
    """A catalog from `BERTH_SKUS`: JSON text, or a path to a file holding it."""
    text = raw.strip()
    skus: list[Sku]
    marked: str | None
    if not text:
        skus, marked = list(BUILTIN), BUILTIN_DEFAULT
    else:
        if not text.startswith(("[", "{")):
            try:
                text = Path(text).read_text()
            except OSError as e:
                raise CatalogError(f"BERTH_SKUS: cannot read {raw!r}: {e.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise CatalogError(f"BERTH_SKUS is not valid JSON: {e}") from None
        if isinstance(doc, dict):
            doc = doc.get("skus")
        if not isinstance(doc, list) or not doc:
            raise CatalogError("BERTH_SKUS must be a non-empty JSON list of SKUs")
        skus, marked = [], None
        for i, entry in enumerate(doc):
            where = f"BERTH_SKUS[{i}]"
            if not isinstance(entry, dict):
                raise CatalogError(f"{where} must be an object")
            unknown = sorted(
                set(entry)
                - {"name", "title", "included_bytes", "hard_limit_bytes", "price_per_gib", "currency", "default"}
            )
            if unknown:
                raise CatalogError(f"{where}: unknown field {unknown[0]!r}")
            name = entry.get("name")
            if not isinstance(name, str) or not name or len(name) > 63:
                raise CatalogError(f"{where}: name must be a string of 1-63 characters")
            price = entry.get("price_per_gib")
            if price is not None and (not isinstance(price, (int, float)) or isinstance(price, bool) or price < 0):
                raise CatalogError(f"{where}: price_per_gib must be a non-negative number or null")
            if name in (s.name for s in skus):
                raise CatalogError(f"{where}: SKU {name!r} appears twice")
            skus.append(
                Sku(
                    name=name,
                    title=str(entry.get("title") or name),
                    included_bytes=_nonnegative_int(entry, "included_bytes", where, nullable=False),
                    hard_limit_bytes=_nonnegative_int(entry, "hard_limit_bytes", where, nullable=True),
                    price_per_gib=float(price) if price is not None else None,
                    currency=str(entry.get("currency") or "USD"),
                )
            )
            if entry.get("default") is True:
                marked = marked or name
        marked = marked or skus[0].name
    chosen = default.strip() or marked
    if chosen not in (s.name for s in skus):
        raise CatalogError(f"BERTH_DEFAULT_SKU={chosen!r} is not in the catalog {[s.name for s in skus]}")
    return Catalog(tuple(skus), chosen)


_catalog = parse_catalog("")


def install(catalog: Catalog) -> None:
    """Make `catalog` this process's SKU catalog (at server start, from the settings)."""
    global _catalog
    _catalog = catalog


def catalog() -> Catalog:
    return _catalog


# -- a registry's SKU and usage -------------------------------------------------------------------


def sku_name_of(registry: Registry) -> str:
    """The SKU name in effect: the registry's own, else its organization's, else the default."""
    if registry.sku and _catalog.get(registry.sku):
        return registry.sku
    rows = _ORG_SKU.rows(registry.org_id)
    org_sku = rows[0][0] if rows else None
    if org_sku and _catalog.get(org_sku):
        return org_sku
    if registry.sku or org_sku:
        log.warning(
            "SKU %r is not in the catalog; registry %r uses the default %r",
            registry.sku or org_sku,
            registry.name,
            _catalog.default,
        )
    return _catalog.default


def sku_of(registry: Registry) -> Sku:
    return _catalog.resolve(sku_name_of(registry))


def stored_bytes(registry: Registry | int) -> int:
    registry_id = registry if isinstance(registry, int) else registry.id
    return int(Blob.select(pw.fn.COALESCE(pw.fn.SUM(Blob.size), 0)).where(Blob.registry == registry_id).scalar() or 0)


def quota(registry: Registry, used: int | None = None) -> dict:
    """The registry view's `quota`: limit (null: none), used and remaining bytes."""
    sku = sku_of(registry)
    used = stored_bytes(registry) if used is None else used
    limit = sku.hard_limit_bytes
    return {
        "sku": sku.name,
        "limit_bytes": limit,
        "included_bytes": sku.included_bytes,
        "used_bytes": used,
        "remaining_bytes": None if limit is None else max(limit - used, 0),
    }


def validate_sku(value: object) -> str:
    if not isinstance(value, str) or _catalog.get(value) is None:
        raise RegistryError("INVALID", f"sku must be one of {_catalog.names()} (GET /api/v1/skus)", field="sku")
    return value


# -- the rule --------------------------------------------------------------------------------------


def _held_by_uploads(registry_id) -> pw.SelectQuery:
    """The bytes the registry's open upload sessions hold (their committed offsets), as a scalar
    subquery."""
    return Upload.select(pw.fn.COALESCE(pw.fn.SUM(Upload.offset), pw.SQL("0"))).where(Upload.registry_id == registry_id)


def _footprint_query(registry_id, digest=None) -> pw.SelectQuery:
    """(stored bytes, bytes held by open uploads, whether `digest` is stored), in one query."""
    stored = Blob.select(pw.fn.COALESCE(pw.fn.SUM(Blob.size), pw.SQL("0"))).where(Blob.registry == registry_id)
    has_digest = pw.SQL("0")  # SQL text, not a parameter: a compiled query's parameters are its arguments
    if digest is not None:
        has_digest = pw.fn.EXISTS(
            Blob.select(pw.SQL("1")).where((Blob.registry == registry_id) & (Blob.digest == digest))
        )
    return Registry.select(
        stored.alias("stored"), _held_by_uploads(registry_id).alias("held"), has_digest.alias("has_digest")
    ).where(Registry.id == registry_id)


# Compiled once (app/db/prepared.py): they run before every blob upload.
_ORG_SKU = Prepared(lambda org: Organization.select(Organization.sku).where(Organization.id == org), "i")
_FOOTPRINT = Prepared(lambda registry: _footprint_query(registry), "i")
_FOOTPRINT_OF = Prepared(lambda registry, digest: _footprint_query(registry, digest), "is")
_OPEN_SESSIONS = Prepared(
    lambda registry: Upload.select(pw.fn.COUNT(Upload.id)).where(Upload.registry_id == registry),
    "i",
)


def _footprint(registry_id: int, digest: str | None) -> tuple[int, int, bool]:
    """(stored bytes, bytes held by open uploads, whether `digest` is stored)."""
    rows = _FOOTPRINT.rows(registry_id) if digest is None else _FOOTPRINT_OF.rows(registry_id, digest)
    if not rows:
        return 0, 0, False
    row = rows[0]
    return int(row[0] or 0), int(row[1] or 0), bool(row[2])


def check_push(registry: Registry, size: int | None, digest: str | None = None) -> None:
    """Refuse (403 DENIED) `size` more bytes for `registry` when its stored bytes, plus the bytes
    its open upload sessions hold, plus `size` would pass the hard limit of its SKU. A `digest`
    the registry already stores adds nothing, and is never refused."""
    if not size or size <= 0:
        return
    sku = sku_of(registry)
    limit = sku.hard_limit_bytes
    if limit is None:
        return
    used, held, already_stored = _footprint(registry.id, digest)
    if already_stored or used + held + size <= limit:
        return
    in_flight = f" and holds {human(held)} more in unfinished uploads" if held else ""
    raise RegistryError(
        "DENIED",
        f"storage quota exceeded: registry {registry.name!r} (SKU {sku.name!r}) has a hard limit of "
        f"{human(limit)} ({limit} bytes) and stores {human(used)}{in_flight}; this upload of {human(size)} "
        f"would make {human(used + held + size)}. Delete images you no longer need (then run garbage collection), "
        + ("finish or cancel unfinished uploads (idle ones expire), " if held else "")
        + f"or move the registry to a larger SKU (berth registry set {registry.name} --sku <name>; see berth skus)",
        detail={
            "sku": sku.name,
            "limit_bytes": limit,
            "used_bytes": used,
            "uploading_bytes": held,
            "requested_bytes": size,
        },
    )


SESSION_RETRY_AFTER = 60  # seconds: sessions end as pushes finish, and idle ones expire


def check_new_session(registry: Registry, limit: int) -> None:
    """Refuse (429 TOOMANYREQUESTS, with Retry-After) a new upload session in `registry` when it
    already has `limit` open ones (`BERTH_MAX_UPLOAD_SESSIONS`; 0: no cap). Concurrent starts
    may pass the cap by the number of requests in flight."""
    if limit <= 0:
        return
    open_sessions = _OPEN_SESSIONS.rows(registry.id)[0][0] or 0
    if open_sessions < limit:
        return
    raise RegistryError(
        "TOOMANYREQUESTS",
        f"too many upload sessions: registry {registry.name!r} has {open_sessions} unfinished uploads, "
        f"the most it may have at once is {limit}. Finish or cancel some (DELETE the upload's location); "
        f"idle ones expire",
        detail={"open_sessions": open_sessions, "limit": limit},
        headers={"Retry-After": str(SESSION_RETRY_AFTER)},
    )


def human(n: int) -> str:
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"
