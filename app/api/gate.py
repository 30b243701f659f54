"""Authentication and authorization for every management route, in one middleware.

A resource declares `permissions = {"GET": <action>, ...}`. The gate resolves what the route
names and authorizes there:
- `{org}` (or a resource's `org_for(params)`, for routes addressed by id): the caller's role in
  that organization; `req.context.org`.
- `{registry}` under an org: the caller's role on that registry (a registry-scoped token reaches
  only its own registry); `req.context.registry`.

What a caller may not see answers 404, exactly like what does not exist, so private names do not
leak; what a caller may see but not do answers 403. A resource without an entry for a method is
refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.auth import roles
from app.auth.gate import authorize_org
from app.auth.identity import Identity
from app.auth.subject import Subject
from app.edge import preflight
from app.services import registries
from app.spec.errors import RegistryError

if TYPE_CHECKING:
    from app.db.models import Organization


class ManagementGate:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not req.path.startswith("/api/"):
            return
        permissions = getattr(resource, "permissions", None)
        if permissions is None:
            return  # a public route (the OpenAPI document)
        action = permissions.get(req.method)
        if action is None:
            if hasattr(resource, f"on_{req.method.lower()}"):
                # A responder no permission names: refused, so that forgetting the entry fails
                # closed rather than running the method for anyone.
                raise RegistryError("METHOD_UNKNOWN", f"{req.method} is not allowed here")
            return  # falcon answers 405 for methods the resource lacks
        subject = self.identity.management(req)
        req.context.subject = subject
        if subject.anonymous:
            raise RegistryError("UNAUTHORIZED", "send Authorization: Bearer <token>")
        if "org" in params:
            org = registries.find_org(params["org"])
        elif hasattr(resource, "org_for"):
            org = resource.org_for(params)
        else:
            preflight.allow(req)
            return  # not under an organization (none such route needs a role)
        if org is None or not _member(subject, org):
            raise RegistryError("NOT_FOUND", _not_found(params))
        req.context.org = org
        if "registry" in params:
            registry = registries.find(org, params["registry"])
            if registry is None or subject.role_in(org.id, registry.id) is None:
                raise RegistryError(
                    "NOT_FOUND", f"registry {params['registry']!r} not found in organization {org.name!r}"
                )
            if not roles.allows(subject.role_in(org.id, registry.id), action):
                raise RegistryError("DENIED", f"{subject.name} may not {action} in registry {registry.name}")
            req.context.registry = registry
        else:
            authorize_org(subject, action, org.id)
        preflight.allow(req)  # on a preflight: authorized, so its body may be read


def _member(subject: Subject, org: Organization) -> bool:
    return subject.grants is None and org.id in subject.roles


def _not_found(params: dict) -> str:
    if "org" in params:
        return f"organization {params['org']!r} not found"
    return "not found"
