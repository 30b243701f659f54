"""`/api/v1/orgs/{org}/registries/{registry}/retention[/preview|/apply]`: a registry's retention
policy, a dry run of it, and applying it (then garbage collection). Rules: app/services/retention.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import falcon

from app.auth import roles
from app.edge import media
from app.services import retention
from app.services.listings import TagLists
from app.spec.errors import RegistryError

if TYPE_CHECKING:
    from app.db.models import RetentionPolicy

log = logging.getLogger("berth.retention")


def render_rules(rules: retention.Rules) -> dict:
    return {
        "keep_last": rules.keep_last,
        "keep_patterns": list(rules.keep_patterns),
        "expire_days": rules.expire_days,
        "delete_untagged": rules.delete_untagged,
    }


def render_override(override: retention.Override) -> dict:
    return {
        "repositories": override.repositories,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in override.fields.items()},
    }


def render_policy(policy: retention.Policy) -> dict:
    return {**render_rules(policy.rules), "overrides": [render_override(o) for o in policy.overrides]}


def render_stored_policy(row: RetentionPolicy | None) -> dict:
    """A registry's policy (the empty one when it has none) with who set it, and when."""
    if row is None:
        return {**render_policy(retention.Policy()), "configured": False, "updated_at": None, "updated_by": None}
    return {
        **render_policy(retention.policy_of(row)),
        "configured": True,
        "updated_at": _time(row.updated_at),
        "updated_by": row.updated_by,
    }


def render_result(result: retention.Result) -> dict:
    return {
        "registry": result.registry,
        "dry_run": result.dry_run,
        "evaluated_at": _time(result.evaluated_at),
        "policy": render_policy(result.policy),
        "repositories": result.repositories,
        "kept_tags": result.kept_tags,
        "tags": result.tags,
        "manifests": result.manifests,
        "summary": {
            "tags": len(result.tags),
            "manifests": len(result.manifests),
            "manifest_bytes": sum(m["size"] for m in result.manifests),
        },
        "gc": result.gc,
    }


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def _stored(registry) -> retention.Policy:
    row = retention.get_policy(registry)
    if row is None:
        raise RegistryError(
            "CONFLICT",
            f"registry {registry.name!r} has no retention policy; PUT one first, e.g. {retention.EXAMPLE}",
            status=409,
        )
    return retention.policy_of(row)


class RetentionPolicyResource:
    permissions = {"GET": roles.BROWSE, "PUT": roles.DELETE, "DELETE": roles.DELETE}
    audit = {"PUT": "retention.set", "DELETE": "retention.remove"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        resp.media = render_stored_policy(retention.get_policy(req.context.registry))

    def on_put(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        body = media.object_of(req, example=retention.EXAMPLE)
        policy = retention.parse_policy(body)
        req.context.audit_detail = policy.document()
        row = retention.set_policy(req.context.registry, policy, req.context.subject.name)
        resp.media = render_stored_policy(row)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        retention.delete_policy(req.context.registry)
        resp.status = falcon.HTTP_204


class RetentionPreviewResource:
    """A dry run: the stored policy, or `{"policy": {...}}` to try one before saving it."""

    permissions = {"POST": roles.BROWSE}

    def __init__(self, grace: dt.timedelta) -> None:
        self.grace = grace

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        body = media.object_of(req, example='{"policy": ' + retention.EXAMPLE + "}", allowed={"policy"}, optional=True)
        if body.get("policy") is not None:
            try:
                policy = retention.parse_policy(body["policy"])
            except RegistryError as e:
                e.field = f"policy.{e.field}" if e.field else "policy"
                raise
        else:
            policy = _stored(req.context.registry)
        resp.media = render_result(retention.preview(req.context.registry, policy, grace=self.grace))


class RetentionApplyResource:
    """Apply the stored policy, audit every deletion, then collect the registry's garbage."""

    permissions = {"POST": roles.DELETE}
    audit = {"POST": "retention.apply"}

    def __init__(self, store, grace: dt.timedelta, upload_expiry: dt.timedelta, tag_lists: TagLists) -> None:
        self.store = store
        self.tag_lists = tag_lists
        self.grace = grace
        self.upload_expiry = upload_expiry

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        media.object_of(req, example="{}", allowed=set(), optional=True)
        target = req.context.registry
        if target.status == "deleting":
            raise RegistryError("CONFLICT", f"registry {registry!r} is being deleted")
        policy = _stored(target)
        actor = retention.Actor(
            req.context.org.id,
            req.context.subject.name,
            getattr(req.context, "client_ip", None),
            getattr(req.context, "request_id", None),
        )
        result = retention.apply(target, policy, actor, grace=self.grace, tag_lists=self.tag_lists)
        result.gc = self._collect(target)
        req.context.audit_detail = {"tags": len(result.tags), "manifests": len(result.manifests), "gc": result.gc}
        resp.media = render_result(result)

    def _collect(self, registry) -> dict | None:
        """Garbage collection of the registry, right after the deletions (app/services/gc.py)."""
        from app.services import gc

        try:
            report = gc.collect(registry, self.store, grace=self.grace, upload_expiry=self.upload_expiry)
        except Exception:  # noqa: BLE001 - the deletions stand; the periodic collection frees the bytes later
            log.exception("garbage collection after the retention run of %s failed", registry.name)
            return None
        return {
            "manifests_deleted": len(report.manifests),
            "blobs_deleted": len(report.blobs),
            "bytes_freed": report.bytes_freed,
        }
