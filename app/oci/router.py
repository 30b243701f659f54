"""The data plane's front door: match the route, identify the caller, find the registry,
authorize once, then hand the resolved request to the resource."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import falcon

from app.auth import roles
from app.auth.gate import authorize
from app.auth.identity import challenge
from app.db import checked
from app.edge import preflight
from app.edge.spooled_body import body_lost
from app.oci import routes
from app.oci.blobs import BlobResource
from app.oci.listings import CatalogResource, TagsResource
from app.oci.manifests import ManifestResource
from app.oci.referrers import ReferrersResource
from app.oci.resolved_request import RepositoryRequest, ResolvedRequest
from app.oci.target import load_registry, parse_target
from app.oci.uploads import UploadResource, UploadsResource
from app.spec import digests
from app.spec.errors import RegistryError


class BaseResource:
    """`GET /v2/`: tells clients this is a registry, and whether their credentials work."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: ResolvedRequest) -> None:
        if resolved.subject.anonymous and resolved.subject.grants is None:
            raise RegistryError("UNAUTHORIZED", "authentication required")
        resp.media = {}  # any valid registry token will do, an anonymous one included


class DataPlaneRouter:
    def __init__(self, services, settings, on_row_changed: Callable[[], object] = lambda: None) -> None:
        self.domain = settings.domain
        self.on_row_changed = on_row_changed  # counts reads run again (app/db/checked.py)
        self.identity = services.identity
        self.resources: dict[str, Any] = {  # each a Falcon resource with `actions`
            "base": BaseResource(),
            "catalog": CatalogResource(settings.domain),
            "tags": TagsResource(services.tag_lists),
            "manifest": ManifestResource(services.manifests, services.meter, services.pull_times),
            "blob": BlobResource(services.blobs, services.meter),
            "uploads": UploadsResource(services.uploads, services.blobs, services.meter, settings.max_upload_sessions),
            "upload": UploadResource(services.uploads, services.meter),
            "referrers": ReferrersResource(),
        }

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_) -> None:
        resp.set_header("Docker-Distribution-API-Version", "registry/2.0")
        route = routes.match(req.path)
        req.context.route = f"oci.{route.kind}" if route else "oci.unknown"
        if route is None:
            raise RegistryError("NOT_FOUND", f"no data-plane endpoint at {req.path[:200]!r}")
        resource = self.resources[route.kind]
        method = req.method.upper()
        if method == "OPTIONS":  # CORS preflight: no credentials come with it
            resp.set_header("Allow", ", ".join(_allowed(resource)))
            resp.status = falcon.HTTP_204
            return
        responder = getattr(resource, f"on_{method.lower()}", None)
        if responder is None and method == "HEAD":
            responder = getattr(resource, "on_get", None)
        if responder is None:
            raise RegistryError(
                "UNSUPPORTED",
                f"{method} is not supported here",
                status=405,
                headers={"Allow": ", ".join(_allowed(resource))},
            )
        # The token and the registry may come from the rows this process keeps (app/db/checked.py),
        # checked with a read's first statement, or before a write's responder; a row that changed
        # runs the request again, afresh.
        headers = dict(resp._headers)
        try:
            with checked.reads():
                return self._serve(req, resp, route, resource, responder, method)
        except checked.RowChanged:
            self.on_row_changed()
            _restart(resp, headers)
        return self._serve(req, resp, route, resource, responder, method)

    def _serve(self, req: falcon.Request, resp: falcon.Response, route, resource, responder, method: str) -> None:
        subject = self.identity.data_plane(req)
        req.context.subject = subject
        if route.kind in ("base", "catalog"):
            # /v2/ needs any valid identity; the catalog filters by what the caller may browse.
            with _challenging(req, "registry:catalog:*" if route.kind == "catalog" else None):
                preflight.allow(req, takes_body=False)  # credentials checked; neither takes a body
                return responder(req, resp, ResolvedRequest(subject))

        target = parse_target(route.name, req.host, self.domain, req.context.registry_header)
        req.context.registry_name, req.context.repository = target.registry_name, target.repository
        _audit(req, route, method, target)
        action = resource.actions.get(method) or resource.actions["GET"]  # HEAD reads as GET
        with _challenging(req, f"repository:{target.name}:{SCOPE_ACTIONS[action]}"):
            registry = load_registry(target)
            if registry is None or not registry.serves:
                if subject.anonymous:
                    raise RegistryError("UNAUTHORIZED", "authentication required")
                raise RegistryError("NAME_UNKNOWN", f"registry {target.registry_name!r} not found")
            req.context.audit_org_id = registry.org_id
            authorize(subject, action, registry, target.repository)
        if method not in ("GET", "HEAD"):
            checked.settle()  # before the body is read and anything written: neither runs twice
        preflight.allow(req, takes_body=action == roles.PUSH)  # only a push carries a body
        if body_lost(req.stream):
            raise RegistryError(
                "STORAGE_FULL",
                "the disk filled while the request body arrived; nothing of it was kept: retry once space is freed",
            )
        responder(req, resp, RepositoryRequest(subject, target, registry, route.arg))


# What the audit trail records on the data plane: pushes, tag moves and deletes (not reads).
AUDITED = {
    ("manifest", "PUT"): "manifest.push",
    ("manifest", "DELETE"): "manifest.delete",
    ("blob", "DELETE"): "blob.delete",
}


def _audit(req: falcon.Request, route, method: str, target) -> None:
    action = AUDITED.get((route.kind, method))
    if action is None:
        return
    target_fields = {"registry": target.registry_name, "repository": target.repository}
    if route.kind == "manifest" and not digests.is_digest(route.arg):
        target_fields["tag"] = route.arg
        if method == "DELETE":
            action = "tag.delete"
    else:
        target_fields["digest"] = route.arg
    req.context.audit_action = action
    req.context.audit_target = target_fields


def _restart(resp: falcon.Response, headers: dict) -> None:
    """Undo what a first run of a read set on `resp`, for a second run."""
    if resp.stream is not None and hasattr(resp.stream, "close"):
        resp.stream.close()
    resp.status = falcon.HTTP_200
    resp._headers = dict(headers)
    resp._extra_headers = None
    resp.text = resp.stream = resp.data = None
    resp.media = None


def _allowed(resource) -> list[str]:
    methods = {m[3:].upper() for m in dir(resource) if m.startswith("on_")}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


# What a client should ask the token service for, per gate action.
SCOPE_ACTIONS = {roles.PULL: "pull", roles.PUSH: "pull,push", roles.DELETE: "delete"}


@contextmanager
def _challenging(req: falcon.Request, scope: str | None):
    """Turn a 401 into one that tells the client where to get a token, and for what scope."""
    try:
        yield
    except RegistryError as error:
        if error.status == 401:
            error.headers["WWW-Authenticate"] = challenge(req, scope) + (
                f',error="{error.challenge_error}"' if error.challenge_error else ""
            )
        raise
