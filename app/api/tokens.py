"""`/api/v1/orgs/{org}/tokens[/{id}]`: issue (the secret is in this response only), list, revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.api import pagination
from app.auth import roles
from app.services import tokens
from app.spec.errors import RegistryError

if TYPE_CHECKING:
    from app.db.models import AccessToken


def render_token(token: AccessToken) -> dict:
    def iso(t):
        return t.isoformat() + "Z" if t else None

    scope = next((s for s, r in roles.SCOPES.items() if r == token.role), None)
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "scope": scope,
        "registry": token.registry.name if token.registry_id else None,
        "created_at": iso(token.created_at),
        "created_by": token.created_by,
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


class TokensResource:
    permissions = {"GET": roles.CREATE_TOKEN, "POST": roles.CREATE_TOKEN}
    idempotent = ("POST",)
    secret_fields = ("token",)  # withheld from Idempotency-Key replays (app/api/idempotency.py)
    audit = {"POST": "token.create"}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        rows = tokens.page_of_tokens(req.context.org, req.context.subject, pagination.page_of(req, int))
        resp.media = pagination.body("tokens", [render_token(t) for t in rows.items], rows)
        pagination.link(req, resp, rows)

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str) -> None:
        body = req.get_media(default_when_empty=None)
        if not isinstance(body, dict):
            raise RegistryError(
                "INVALID",
                'send a JSON object: {"name": ..., "scope": "pull"|"push", '
                '"registry": optional, "expires_in": optional, e.g. "30d"}',
            )
        registry = body.get("registry")
        if registry is not None and not isinstance(registry, str):
            raise RegistryError("INVALID", "registry must be a registry name")
        token, secret = tokens.create_token(
            req.context.org,
            req.context.subject,
            body.get("name"),
            scope=body.get("scope"),
            role=body.get("role"),
            registry=registry,
            expires_in=body.get("expires_in"),
        )
        req.context.secret = secret
        req.context.audit_detail = {"token_id": token.id, "token_name": token.name, "role": token.role}
        resp.status = falcon.HTTP_201
        resp.location = f"/api/v1/orgs/{org}/tokens/{token.id}"
        resp.media = {**render_token(token), "token": secret}


class TokenResource:
    permissions = {"DELETE": roles.CREATE_TOKEN}
    audit = {"DELETE": "token.revoke"}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, org: str, token_id: str) -> None:
        token_id_ = tokens.parse_id(token_id)
        req.context.audit_detail = {"token_id": token_id_}  # refusals too: which token someone tried
        token = tokens.revoke_token(req.context.org, req.context.subject, token_id_)
        req.context.audit_detail = {"token_id": token.id, "token_name": token.name}
        resp.status = falcon.HTTP_204
