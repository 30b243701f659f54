"""`/auth/token` (the Docker token flow) and `/auth/jwks.json` (the keys that verify its tokens).

GET with Basic credentials (or none, for public pulls), as Docker does; POST with the OAuth2
password or refresh_token grant, as containerd and Podman do. Each requested scope is granted
the actions the caller may do there, possibly none: a token is downscoped, never refused.
"""

from __future__ import annotations

import datetime as dt

import falcon

from app.auth import roles
from app.auth.credentials import find_token_by_id, is_live
from app.auth.gate import is_allowed
from app.auth.identity import Identity, service_of
from app.auth.registry_tokens import ACTIONS, RegistryTokens, Scope, parse_scopes
from app.auth.subject import ANONYMOUS, Subject, for_access_token
from app.db.models import Registry
from app.oci.errors import RegistryError
from app.oci.target import load_registry, parse_target

GATE_ACTION = {"pull": roles.PULL, "push": roles.PUSH, "delete": roles.DELETE}


def _host(service: str) -> str:
    """The host part of a `host[:port]` service."""
    if service.startswith("["):
        return service[1:].split("]", 1)[0]
    return service.rsplit(":", 1)[0] if service.count(":") == 1 else service


class TokenService:
    def __init__(self, identity: Identity, registry_tokens: RegistryTokens, domain: str) -> None:
        self.identity = identity
        self.tokens = registry_tokens
        self.domain = domain

    def _grant(self, subject: Subject, service: str, scope: Scope) -> list[str]:
        if scope.type == "registry":
            if scope.name != "catalog" or subject.anonymous:
                return []
            visible = any(is_allowed(subject, roles.BROWSE, r) for r in Registry.select())
            return ["*"] if visible else []
        try:
            target = parse_target(scope.name, _host(service), self.domain)
        except RegistryError:
            return []
        registry = load_registry(target)
        if registry is None or not registry.serves:
            return []
        wanted = ACTIONS if "*" in scope.actions else [a for a in ACTIONS if a in scope.actions]
        return [a for a in wanted if is_allowed(subject, GATE_ACTION[a], registry)]

    def respond(self, resp: falcon.Response, subject: Subject, service: str, scopes: list[Scope],
                offline: bool) -> None:
        access = [scope.claim(self._grant(subject, service, scope)) for scope in scopes]
        catalog = any(s.type == "registry" and a["actions"] for s, a in zip(scopes, access))
        token, lifetime = self.tokens.issue(
            subject.name, service, access, subject.token_id,
            roles={str(k): v for k, v in subject.roles.items()} if catalog else None,
            registry_id=subject.registry_id if catalog else None,
        )
        body = {
            "token": token, "access_token": token, "expires_in": lifetime,
            "issued_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        }
        if offline and subject.token_id is not None:
            body["refresh_token"] = self.tokens.issue_refresh(subject.name, service, subject.token_id)
        resp.set_header("Cache-Control", "no-store")
        resp.media = body


class RegistryTokenResource:
    def __init__(self, service: TokenService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        header = req.get_header("Authorization")
        subject = ANONYMOUS
        if header:
            with self.service.identity.guarded(req):
                subject = self.service.identity.from_basic(header)
        service = req.get_param("service") or service_of(req)
        scopes = parse_scopes(req.get_param_as_list("scope") or [])
        offline = (req.get_param("offline_token") or "").lower() == "true"
        self.service.respond(resp, subject, service, scopes, offline)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_type is None or not req.content_type.startswith("application/x-www-form-urlencoded"):
            raise RegistryError("UNSUPPORTED", "POST an application/x-www-form-urlencoded OAuth2 form", status=415)
        form = req.get_media()
        if not isinstance(form, dict):
            raise RegistryError("INVALID", "empty form")
        grant_type = form.get("grant_type")
        service = form.get("service") or service_of(req)
        if not isinstance(service, str):
            raise RegistryError("INVALID", "service must be a single value")
        with self.service.identity.guarded(req):
            if grant_type == "password":
                password = form.get("password")
                if not isinstance(password, str) or not password:
                    raise RegistryError("UNAUTHORIZED", "the password grant needs username and password")
                subject = self.service.identity.from_password(password)
            elif grant_type == "refresh_token":
                subject = self._refresh(form.get("refresh_token"), service)
            else:
                raise RegistryError("INVALID", "grant_type must be password or refresh_token")
        scope = form.get("scope") or ""
        scopes = parse_scopes(scope if isinstance(scope, list) else [scope])
        self.service.respond(resp, subject, service, scopes, form.get("access_type") == "offline")

    def _refresh(self, value: object, service: str) -> Subject:
        claims = self.service.tokens.verify_refresh(value, service) if isinstance(value, str) else None
        token = find_token_by_id(claims["tid"]) if claims else None
        if token is None or not is_live(token):
            raise RegistryError("UNAUTHORIZED", "invalid or expired refresh token; log in again")
        return for_access_token(token)


class JwksResource:
    def __init__(self, registry_tokens: RegistryTokens) -> None:
        self.tokens = registry_tokens

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.tokens.keys.jwks()
