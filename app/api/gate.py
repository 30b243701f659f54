"""Authentication and authorization for every management route, in one middleware.

A resource declares `permissions = {"GET": <action>, ...}`; routes under an organization are
authorized against the caller's role in it. A resource without an entry for a method is refused.
"""

from __future__ import annotations

import falcon

from app.auth.gate import authorize_org
from app.auth.identity import Identity
from app.oci.errors import RegistryError
from app.services.registries import get_org


class ManagementGate:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or not req.path.startswith("/api/"):
            return
        permissions = getattr(resource, "permissions", None)
        if permissions is None:
            return  # a public route (none yet)
        action = permissions.get(req.method)
        if action is None:
            return  # falcon answers 405 for methods the resource lacks
        subject = self.identity.management(req)
        req.context.subject = subject
        if subject.anonymous:
            raise RegistryError("UNAUTHORIZED", "send Authorization: Bearer <token>")
        req.context.subject = subject
        if "org" in params:
            org = get_org(params["org"])
            authorize_org(subject, action, org.id)
            req.context.org = org
