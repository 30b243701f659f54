"""`/healthz` (the process answers) and `/readyz` (its database and blob store are reachable, and
its disk has room: BERTH_MIN_FREE_BYTES), for the Deployment's liveness and readiness probes."""

from __future__ import annotations

import falcon

from app.db.setup import ping
from app.spec.errors import RegistryError
from app.storage.capacity import FreeSpace


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    def __init__(self, store, free_space: FreeSpace | None = None) -> None:
        self.store = store
        self.free_space = free_space

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {}
        try:
            ping()
            checks["database"] = "ok"
        except Exception as e:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"unavailable: {type(e).__name__}"
        checks["storage"] = "ok" if self.store.healthy() else "unavailable"
        if self.free_space is not None:
            checks["disk"] = self.free_space.shortfall() or "ok"
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            raise RegistryError("UNKNOWN", f"not ready: {checks}", status=503)
        resp.media = {"status": "ready", "checks": checks}
