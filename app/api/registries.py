"""`/api/v1/orgs/{org}/registries[/{registry}]`: create, list, show, change, delete registries.

Create and delete answer 202 with the lifecycle operation that carries them out
(app.lifecycle.operations); `GET /api/v1/operations/{id}` follows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.api import pagination
from app.api.operations import render_operation
from app.auth import roles
from app.edge import media
from app.lifecycle import operations
from app.services import custom_domains, immutable_tags, manifest_policy, metering, quotas, registries

if TYPE_CHECKING:
    from app.db.models import Registry


def render_manifest_policy(policy: manifest_policy.Policy) -> dict:
    return {"mode": policy.mode, "required_platforms": list(policy.required_platforms)}


def render_registry(registry: Registry, req: falcon.Request, domain: str, *, with_usage: bool = True) -> dict:
    body = {
        "name": registry.name,
        "org": registry.org.name,
        "visibility": registry.visibility,
        "status": registry.status,
        "endpoint": f"{registry.name}.{domain}",
        "path_endpoint": f"{req.netloc}/{registry.name}",
        "custom_domain": registry.custom_domain,
        "custom_domain_status": custom_domains.status(registry),
        "custom_domain_verification": custom_domains.challenge(registry),
        "pull_namespaces": registries.pull_namespaces(registry),
        "created_at": registry.created_at.isoformat() + "Z",
        "created_by": registry.created_by,
        "links": {"self": f"/api/v1/orgs/{registry.org.name}/registries/{registry.name}"},
    }
    body["sku"] = quotas.sku_name_of(registry)
    body["immutable_tags"] = immutable_tags.patterns(registry)
    body["manifest_policy"] = render_manifest_policy(manifest_policy.of(registry))
    if with_usage:
        usage = metering.stored(registry)
        body["usage"] = {
            "stored_bytes": usage.stored_bytes,
            "blobs": usage.blobs,
            "repositories": usage.repositories,
            "tags": usage.tags,
            "manifests": usage.manifests,
        }
        body["quota"] = quotas.quota(registry, used=usage.stored_bytes)
    latest = operations.latest(registry)
    if latest is not None:
        body["links"]["operation"] = f"/api/v1/operations/{latest.id}"
    return body


class RegistriesResource:
    permissions = {"GET": roles.BROWSE, "POST": roles.CREATE_REGISTRY}
    idempotent = ("POST",)
    audit = {"POST": "registry.create"}

    def __init__(self, domain: str, wake) -> None:
        self.domain = domain
        self.wake = wake

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        rows = registries.page_of_registries(req.context.org, pagination.page_of(req, str))
        resp.media = pagination.body("registries", [render_registry(r, req, self.domain) for r in rows.items], rows)
        pagination.link(req, resp, rows)

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        body = media.object_of(
            req,
            example='{"name": "team-images", "visibility": "private"}',
            allowed={"name", "visibility", "custom_domain", "pull_namespaces"},
        )
        req.context.audit_target = {"registry": body.get("name") if isinstance(body.get("name"), str) else None}
        registry, operation = operations.request_create(
            req.context.org,
            registries.validate_name(body.get("name")),
            visibility=body.get("visibility", "private"),
            requested_by=req.context.subject.name,
            custom_domain=body.get("custom_domain"),
            pull_namespaces=body.get("pull_namespaces"),
            platform_domain=self.domain,
        )
        self.wake()
        resp.status = falcon.HTTP_202
        resp.location = f"/api/v1/orgs/{org}/registries/{registry.name}"
        resp.media = {**render_registry(registry, req, self.domain), "operation": render_operation(operation)}


class RegistryResource:
    permissions = {"GET": roles.BROWSE, "PATCH": roles.CREATE_REGISTRY, "DELETE": roles.DELETE_REGISTRY}
    audit = {"PATCH": "registry.update", "DELETE": "registry.delete"}

    def __init__(self, domain: str, wake) -> None:
        self.domain = domain
        self.wake = wake

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        resp.media = render_registry(req.context.registry, req, self.domain)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        changes = media.object_of(req, example='{"visibility": "public"}')
        req.context.audit_detail = {
            k: v
            for k, v in changes.items()
            if k in ("visibility", "custom_domain", "pull_namespaces", "sku", "immutable_tags", "manifest_policy")
        }
        subject, registry_ = req.context.subject, req.context.registry
        updated, operation = operations.request_change(
            registry_,
            changes,
            role=subject.role_in(registry_.org_id, registry_.id),
            requested_by=subject.name,
            platform_domain=self.domain,
        )
        body = render_registry(updated, req, self.domain)
        if operation is not None:  # the footprint changes: it is re-provisioned
            self.wake()
            body["operation"] = render_operation(operation)
        resp.media = body

    def on_delete(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        operation = operations.request_delete(req.context.registry, requested_by=req.context.subject.name)
        self.wake()
        resp.status = falcon.HTTP_202
        resp.location = f"/api/v1/operations/{operation.id}"
        resp.media = {"operation": render_operation(operation)}


class CustomDomainVerificationResource:
    """`POST .../registries/{registry}/custom-domain/verify`: check the claim's TXT record now; when
    it holds the challenge, the domain is verified and an update operation routes it (202)."""

    permissions = {"POST": roles.CREATE_REGISTRY}
    audit = {"POST": "registry.custom_domain.verify"}

    def __init__(self, domain: str, verifier: custom_domains.DomainVerifier, wake) -> None:
        self.domain = domain
        self.verifier = verifier
        self.wake = wake

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        req.context.audit_detail = {"custom_domain": req.context.registry.custom_domain}
        updated, operation = operations.request_domain_verification(
            req.context.registry, self.verifier, requested_by=req.context.subject.name
        )
        body = render_registry(updated, req, self.domain)
        if operation is not None:
            self.wake()
            resp.status = falcon.HTTP_202
            resp.location = f"/api/v1/operations/{operation.id}"
            body["operation"] = render_operation(operation)
        resp.media = body
