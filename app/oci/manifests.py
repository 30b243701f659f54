"""`/v2/<name>/manifests/<reference>`: PUT, GET, HEAD, DELETE by tag or digest."""

from __future__ import annotations

import falcon

from app.auth import roles
from app.oci import digests
from app.oci.errors import RegistryError
from app.oci.request import Call
from app.services import immutable_tags, metering, repositories
from app.services.manifests import ManifestService
from app.services.retention import record_pull


class ManifestResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL, "PUT": roles.PUSH, "DELETE": roles.DELETE}

    def __init__(self, manifests: ManifestService) -> None:
        self.manifests = manifests

    def on_get(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        repository = repositories.get(call.registry, call.target.repository)
        manifest = self.manifests.get(repository, call.arg)
        record_pull(manifest)  # GET and HEAD; writes at most once an hour per manifest
        resp.content_type = manifest.media_type
        resp.set_header("Docker-Content-Digest", manifest.digest)
        resp.set_header("ETag", f'"{manifest.digest}"')
        if req.method == "HEAD":
            resp.content_length = manifest.size
        else:
            resp.data = bytes(manifest.content)
            metering.count(call.registry.id, repository.name, pulls=1, pull_bytes=manifest.size)

    def on_put(self, req: falcon.Request, resp: falcon.Response, call: Call) -> None:
        limit = self.manifests.max_bytes
        if req.content_length is not None and req.content_length > limit:
            raise RegistryError("MANIFEST_INVALID", f"manifest exceeds the {limit}-byte limit", status=413)
        body = req.bounded_stream.read(limit + 1)
        name = call.target.repository
        manifest = self.manifests.put(call.registry, name, call.arg, req.content_type, body,
                                      immutable=immutable_tags.applies(call.registry, name))
        metering.count(call.registry.id, name, pushes=1, push_bytes=len(body))
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
        if immutable_tags.applies(call.registry, repository.name):
            immutable_tags.refuse_delete(repository, call.arg, tag=not digests.is_digest(call.arg))
        self.manifests.delete(repository, call.arg)
        resp.status = falcon.HTTP_202
        resp.content_length = 0
