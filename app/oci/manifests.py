"""`/v2/<name>/manifests/<reference>`: PUT, GET, HEAD, DELETE by tag or digest."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.oci.errors import RegistryError
from app.oci.request import Call
from app.services import repositories
from app.services.manifests import ManifestService


class ManifestResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL, "PUT": roles.PUSH, "DELETE": roles.DELETE}

    def __init__(self, manifests: ManifestService) -> None:
        self.manifests = manifests

    def on_get(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        repository = repositories.get(call.registry, call.target.repository)
        manifest = self.manifests.get(repository, call.arg)
        resp.content_type = manifest.media_type
        resp.set_header("Docker-Content-Digest", manifest.digest)
        resp.set_header("ETag", f'"{manifest.digest}"')
        if req.method == "HEAD":
            resp.content_length = manifest.size
        else:
            resp.data = bytes(manifest.content)

    def on_put(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        limit = self.manifests.max_bytes
        if req.content_length is not None and req.content_length > limit:
            raise RegistryError("MANIFEST_INVALID", f"manifest exceeds the {limit}-byte limit", status=413)
        body = req.bounded_stream.read(limit + 1)
        repository = repositories.get_or_create(call.registry, call.target.repository)
        manifest = self.manifests.put(repository, call.arg, req.content_type, body)
        req.context.audit_target.update(digest=manifest.digest)
        if manifest.replaced_digest:
            req.context.audit_action = "tag.overwrite"
            req.context.audit_detail = {"previous_digest": manifest.replaced_digest}
        resp.status = falcon.HTTP_201
        resp.location = call.target.url(f"manifests/{manifest.digest}")
        resp.set_header("Docker-Content-Digest", manifest.digest)
        if manifest.subject:
            resp.set_header("OCI-Subject", manifest.subject)
        resp.content_length = 0

    def on_delete(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        repository = repositories.get(call.registry, call.target.repository)
        self.manifests.delete(repository, call.arg)
        resp.status = falcon.HTTP_202
        resp.content_length = 0
