"""The data plane's front door: match the route, identify the caller, find the registry,
authorize once, then hand the call to the resource."""

from __future__ import annotations

import falcon

from app.auth.gate import authorize
from app.auth.subject import from_authorization
from app.oci import routes
from app.oci.blobs import BlobResource
from app.oci.errors import RegistryError
from app.oci.listings import CatalogResource, TagsResource
from app.oci.manifests import ManifestResource
from app.oci.referrers import ReferrersResource
from app.oci.request import Call
from app.oci.target import load_registry, parse_target
from app.oci.uploads import UploadResource, UploadsResource


class BaseResource:
    """`GET /v2/`: tells clients this is a registry, and whether their credentials work."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        if call.subject.anonymous:
            raise RegistryError("UNAUTHORIZED", "authentication required")
        resp.media = {}


class DataPlaneRouter:
    def __init__(self, services, settings) -> None:
        self.domain = settings.domain
        self.resources = {
            "base": BaseResource(),
            "catalog": CatalogResource(settings.domain),
            "tags": TagsResource(),
            "manifest": ManifestResource(services.manifests),
            "blob": BlobResource(services.blobs),
            "uploads": UploadsResource(services.uploads, services.blobs),
            "upload": UploadResource(services.uploads),
            "referrers": ReferrersResource(),
        }

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_) -> None:
        resp.set_header("Docker-Distribution-API-Version", "registry/2.0")
        route = routes.match(req.path)
        if route is None:
            raise RegistryError("NOT_FOUND", f"no data-plane endpoint at {req.path[:200]!r}")
        resource = self.resources[route.kind]
        method = req.method.upper()
        responder = getattr(resource, f"on_{method.lower()}", None)
        if responder is None and method == "HEAD":
            responder = getattr(resource, "on_get", None)
        if responder is None:
            allowed = sorted(m[3:].upper() for m in dir(resource) if m.startswith("on_"))
            raise RegistryError(
                "UNSUPPORTED", f"{method} is not supported here", status=405,
                headers={"Allow": ", ".join(allowed)},
            )
        subject = from_authorization(req.get_header("Authorization"))
        if route.kind in ("base", "catalog"):
            # /v2/ needs any valid identity; the catalog filters by what the caller may browse.
            return responder(req, resp, Call(subject))

        target = parse_target(route.name, req.host, self.domain)
        registry = load_registry(target)
        if registry is None or registry.status != "ready":
            if subject.anonymous:
                raise RegistryError("UNAUTHORIZED", "authentication required")
            raise RegistryError("NAME_UNKNOWN", f"registry {target.registry_name!r} not found")
        action = resource.actions.get(method) or resource.actions["GET"]  # HEAD reads as GET
        authorize(subject, action, registry)
        responder(req, resp, Call(subject, target, registry, route.arg))
