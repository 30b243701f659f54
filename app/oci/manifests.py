"""`/v2/<name>/manifests/<reference>`: PUT, GET, HEAD, DELETE by tag or digest.

A PUT by digest may carry `tag` query parameters. It is audited as one record: `detail.tags`
lists the tags asked for (also when the push is refused), `tag` names the tag when there is one,
and the action is `tag.overwrite` with `previous_digests` (tag -> digest) when any tag moved."""

from __future__ import annotations

import falcon
from falcon.uri import parse_query_string

from app.auth import roles
from app.oci.resolved_request import RepositoryRequest
from app.services import immutable_tags, repositories
from app.services.manifests import ManifestService, tag_parameters
from app.services.metering import Meter
from app.services.retention import PullTimes
from app.spec import digests
from app.spec.errors import RegistryError


class ManifestResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL, "PUT": roles.PUSH, "DELETE": roles.DELETE}

    def __init__(self, manifests: ManifestService, meter: Meter, pull_times: PullTimes) -> None:
        self.manifests = manifests
        self.meter = meter
        self.pull_times = pull_times

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        found = self.manifests.find_in(resolved.registry, resolved.target.repository, resolved.arg)
        if found is not None:
            repository, manifest = found
        else:  # the error says which is missing
            repository = repositories.get(resolved.registry, resolved.target.repository)
            manifest = self.manifests.get(repository, resolved.arg)
        self.pull_times.record(manifest)  # GET and HEAD; writes at most once an hour per manifest
        resp.content_type = manifest.media_type
        resp.set_header("Docker-Content-Digest", manifest.digest)
        resp.set_header("ETag", f'"{manifest.digest}"')
        if req.method == "HEAD":
            resp.content_length = manifest.size
        else:
            resp.data = bytes(manifest.content)
            self.meter.count(resolved.registry.id, repository.name, pulls=1, pull_bytes=manifest.size)

    def on_put(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        limit = self.manifests.max_bytes
        if req.content_length is not None and req.content_length > limit:
            raise RegistryError("MANIFEST_INVALID", f"manifest exceeds the {limit}-byte limit", status=413)
        tags = tag_parameters(resolved.arg, _tag_query(req))
        if tags:
            req.context.audit_detail = {"tags": tags}
            if len(tags) == 1:
                req.context.audit_target.update(tag=tags[0])
        body = req.bounded_stream.read(limit + 1)
        name = resolved.target.repository

        def audit(manifest) -> None:  # inside the push's transaction: the push and its record commit together
            req.context.audit_target.update(digest=manifest.digest)
            if manifest.replaced:
                req.context.audit_action = "tag.overwrite"
                if tags:
                    req.context.audit_detail["previous_digests"] = manifest.replaced
                else:
                    req.context.audit_detail = {"previous_digest": manifest.replaced[resolved.arg]}
            record = getattr(req.context, "audit_now", None)  # the audit trail's (app/api/audit.py)
            if record is not None:
                record(201)

        try:
            manifest = self.manifests.put(
                resolved.registry,
                name,
                resolved.arg,
                req.content_type,
                body,
                immutable=immutable_tags.applies(resolved.registry, name),
                tags=tags,
                audit=audit,
            )
        except Exception:
            req.context.audit_recorded = False  # rolled back with the push: the refusal is recorded instead
            raise
        self.meter.count(resolved.registry.id, name, pushes=1, push_bytes=len(body))  # one push, whatever its tags
        for tag in tags:  # a header line per tag applied (distribution-spec: "for each accepted tag")
            _add_header_line(resp, "OCI-Tag", tag)
        resp.status = falcon.HTTP_201
        resp.location = resolved.target.url(f"manifests/{manifest.digest}")
        resp.set_header("Docker-Content-Digest", manifest.digest)
        if manifest.subject:
            resp.set_header("OCI-Subject", manifest.subject)
        resp.content_length = 0

    def on_delete(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        repository = repositories.get(resolved.registry, resolved.target.repository)
        if immutable_tags.applies(resolved.registry, repository.name):
            immutable_tags.refuse_delete(repository, resolved.arg, tag=not digests.is_digest(resolved.arg))
        self.manifests.delete(repository, resolved.arg)
        resp.status = falcon.HTTP_202
        resp.content_length = 0


def _tag_query(req: falcon.Request) -> list[str]:
    """Every `tag` query parameter as sent: blank ones kept (they are refused, not skipped) and
    never split at commas (`tag=a,b` is one invalid tag, not two)."""
    value = parse_query_string(req.query_string, keep_blank=True, csv=False).get("tag", [])
    return [value] if isinstance(value, str) else value


def _add_header_line(resp: falcon.Response, name: str, value: str) -> None:
    # Falcon folds a repeated header into one comma-joined line (Set-Cookie excepted). RFC 9110
    # makes the two forms equal, but a client reading header values one by one (Go's
    # Header.Values) sees only separate lines as separate tags, so each gets its own line.
    if resp._extra_headers is None:
        resp._extra_headers = []
    resp._extra_headers.append((name, value))
