"""`/api/v1/orgs/{org}/registries`: create and list registries."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.db.models import Registry
from app.oci.errors import RegistryError
from app.services import registries


def render(registry: Registry, req: falcon.Request, domain: str) -> dict:
    return {
        "name": registry.name,
        "org": registry.org.name,
        "visibility": registry.visibility,
        "status": registry.status,
        "endpoint": f"{registry.name}.{domain}",
        "path_endpoint": f"{req.netloc}/{registry.name}",
        "created_at": registry.created_at.isoformat() + "Z",
        "created_by": registry.created_by,
    }


class RegistriesResource:
    permissions = {"GET": roles.BROWSE, "POST": roles.CREATE_REGISTRY}

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        items = registries.list_registries(req.context.org)
        resp.media = {"registries": [render(r, req, self.domain) for r in items]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        body = req.get_media(default_when_empty=None)
        if not isinstance(body, dict):
            raise RegistryError("INVALID", 'send a JSON object: {"name": ..., "visibility": "private"|"public"}')
        name, visibility = body.get("name"), body.get("visibility", "private")
        if not isinstance(name, str) or not isinstance(visibility, str):
            raise RegistryError("INVALID", "name and visibility must be strings")
        registry = registries.create_registry(
            req.context.org, name, visibility, created_by=req.context.subject.name
        )
        resp.status = falcon.HTTP_201
        resp.location = f"/api/v1/orgs/{org}/registries/{registry.name}"
        resp.media = render(registry, req, self.domain)
