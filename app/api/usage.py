"""`GET /api/v1/skus` (the storage SKU catalog) and
`GET /api/v1/orgs/{org}/registries/{registry}/usage?since=&until=&repository=` (what a registry
stores, its quota, and its pull and push traffic per repository per day)."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.edge import media
from app.services import metering, quotas
from app.services.metering import Meter
from app.spec.errors import RegistryError


def render_sku(sku: quotas.Sku, *, default: bool) -> dict:
    return {
        "name": sku.name,
        "title": sku.title,
        "included_bytes": sku.included_bytes,
        "hard_limit_bytes": sku.hard_limit_bytes,
        "price_per_gib": sku.price_per_gib,
        "currency": sku.currency,
        "default": default,
    }


class SkusResource:
    # Any authenticated caller: the gate checks the credentials; no organization is involved.
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        catalog = quotas.catalog()
        resp.media = {
            "skus": [render_sku(s, default=s.name == catalog.default) for s in catalog.skus],
            "default": catalog.default,
        }


class UsageResource:
    permissions = {"GET": roles.BROWSE}

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        registry_ = req.context.registry
        since, until = metering.window(
            metering.parse_day(media.query(req, "since"), "since"),
            metering.parse_day(media.query(req, "until"), "until"),
        )
        repository = media.query(req, "repository")
        if repository == "":
            raise RegistryError("INVALID", "repository must be a repository name", field="repository")
        stored = metering.stored(registry_)
        days = self.meter.traffic(registry_, since, until, repository)
        resp.media = {
            "registry": registry_.name,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "storage": {
                "stored_bytes": stored.stored_bytes,
                "blobs": stored.blobs,
                "repositories": stored.repositories,
                "tags": stored.tags,
                "manifests": stored.manifests,
            },
            "quota": quotas.quota(registry_, used=stored.stored_bytes),
            "repositories": metering.repositories(registry_, repository),
            "traffic": metering.totals(days),
            "days": days,
        }
