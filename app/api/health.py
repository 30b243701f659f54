"""`/healthz` (the process answers) and `/readyz` (its database and blob store are reachable, and
its disk has room: BERTH_MIN_FREE_BYTES), for the Deployment's liveness and readiness probes."""

from __future__ import annotations

import falcon

from app.services import readiness
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
        checks = readiness.checks(self.store, self.free_space)
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            raise RegistryError("UNKNOWN", f"not ready: {checks}", status=503)
        resp.media = {"status": "ready", "checks": checks}
