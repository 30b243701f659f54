"""Whether this process can serve: its database and blob store answer, and its disk has room
(BERTH_MIN_FREE_BYTES). `/readyz` (app/api/health.py) reports it for the readiness probe."""

from __future__ import annotations

from app.db.setup import ping
from app.storage.base import BlobStore
from app.storage.capacity import FreeSpace


def checks(store: BlobStore, free_space: FreeSpace | None = None) -> dict[str, str]:
    """Each dependency -> "ok", or what is wrong with it."""
    result = {}
    try:
        ping()
        result["database"] = "ok"
    except Exception as e:  # noqa: BLE001 - any failure means not ready
        result["database"] = f"unavailable: {type(e).__name__}"
    result["storage"] = "ok" if store.healthy() else "unavailable"
    if free_space is not None:
        result["disk"] = free_space.shortfall() or "ok"
    return result
