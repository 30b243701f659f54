"""`/healthz` (the process answers) and `/readyz` (its database and blob store are reachable),
for the Deployment's liveness and readiness probes."""

from __future__ import annotations

import falcon

from app.db.models import database
from app.oci.errors import RegistryError


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    def __init__(self, store) -> None:
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {}
        try:
            database.obj.execute_sql("SELECT 1").fetchone()
            checks["database"] = "ok"
        except Exception as e:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"unavailable: {type(e).__name__}"
        checks["storage"] = "ok" if self.store.healthy() else "unavailable"
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            raise RegistryError("UNKNOWN", f"not ready: {checks}", status=503)
        resp.media = {"status": "ready", "checks": checks}
