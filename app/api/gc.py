"""`POST /api/v1/orgs/{org}/registries/{registry}/gc`: collect a registry's garbage now (or,
with `{"dry_run": true}`, list what would go). The grace period is the server's own."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.edge import media
from app.services import gc
from app.spec.errors import RegistryError


def render_report(report: gc.Report) -> dict:
    return {
        "registry": report.registry,
        "dry_run": report.dry_run,
        "manifests_deleted": report.manifests,
        "blobs_deleted": report.blobs,
        "bytes_freed": report.bytes_freed,
        "orphan_files_deleted": report.orphan_files,
        "expired_uploads": report.expired_uploads,
    }


class GarbageCollectionResource:
    permissions = {"POST": roles.DELETE_REGISTRY}
    audit = {"POST": "registry.gc"}

    def __init__(self, collector: gc.Collector) -> None:
        self.collector = collector

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        body = media.object_of(req, example='{"dry_run": true}', allowed={"dry_run"}, optional=True)
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise RegistryError("INVALID", "dry_run must be true or false", field="dry_run")
        if req.context.registry.status == "deleting":
            raise RegistryError("CONFLICT", f"registry {registry!r} is being deleted")
        report = gc.collect(
            req.context.registry,
            self.collector.store,
            grace=self.collector.grace,
            dry_run=dry_run,
            upload_expiry=self.collector.upload_expiry,
        )
        req.context.audit_detail = {
            "dry_run": dry_run,
            "manifests": len(report.manifests),
            "blobs": len(report.blobs),
            "bytes_freed": report.bytes_freed,
        }
        resp.media = render_report(report)
