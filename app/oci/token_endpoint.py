"""`/auth/token` (the Docker token flow) and `/auth/jwks.json` (the keys that verify its tokens).

GET with Basic credentials (or none, for public pulls), as Docker does; POST with the OAuth2
password or refresh_token grant, as containerd and Podman do. Each requested scope is granted
the actions the caller may do there, possibly none: a token is downscoped, never refused.

A scope names a repository the way a client names it on the token's `service` (its audience,
the host the token will be presented to), so it is resolved exactly as the data plane resolves
a request on that host: the platform host or a verified custom domain names the registry, the
shared endpoint takes it from the path. When a trusted gateway stamped the registry this
request came through, a service that is not an endpoint of that registry gets nothing. Each
grant names its registry by uid (app/auth/gate.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import falcon

from app.auth import roles
from app.auth.gate import is_allowed
from app.auth.identity import Identity, service_of
from app.auth.registry_tokens import ACTIONS, RegistryTokens, Scope, parse_scopes
from app.auth.subject import ANONYMOUS, Subject, for_access_token
from app.auth.token_secrets import find_live_token
from app.db.models import Registry
from app.oci.target import load_registry, target_in
from app.services.endpoints import registry_named_by
from app.spec.errors import RegistryError

GATE_ACTION = {"pull": roles.PULL, "push": roles.PUSH, "delete": roles.DELETE}


def _host(service: str) -> str:
    """The host part of a `host[:port]` service."""
    if service.startswith("["):
        return service[1:].split("]", 1)[0]
    return service.rsplit(":", 1)[0] if service.count(":") == 1 else service


@dataclass(frozen=True)
class _Endpoint:
    registry: str | None  # the registry the service's host names; None: the shared endpoint
    usable: bool  # False: the request came through another registry's route


class TokenService:
    def __init__(self, identity: Identity, registry_tokens: RegistryTokens, domain: str) -> None:
        self.identity = identity
        self.tokens = registry_tokens
        self.domain = domain

    def _grant(self, subject: Subject, endpoint: _Endpoint, scope: Scope) -> dict:
        if scope.type == "registry":
            if scope.name != "catalog" or subject.anonymous or not endpoint.usable:
                return scope.claim([])
            visible = any(is_allowed(subject, roles.BROWSE, r) for r in Registry.select())
            return scope.claim(["*"] if visible else [])
        if not endpoint.usable:
            return scope.claim([])
        try:
            target = target_in(scope.name, endpoint.registry)
        except RegistryError:
            return scope.claim([])
        registry = load_registry(target)
        if registry is None or not registry.serves:
            return scope.claim([])
        wanted = ACTIONS if "*" in scope.actions else [a for a in ACTIONS if a in scope.actions]
        granted = [a for a in wanted if is_allowed(subject, GATE_ACTION[a], registry)]
        return scope.claim(granted, registry.uid, target.repository)

    def endpoint(self, service: str, gateway_registry: str | None) -> _Endpoint:
        named = registry_named_by(_host(service), self.domain)
        # Through a registry's route, the token is for that registry's own hosts only.
        usable = gateway_registry is None or named == gateway_registry
        return _Endpoint(named, usable)

    def respond(
        self,
        resp: falcon.Response,
        subject: Subject,
        service: str,
        scopes: list[Scope],
        offline: bool,
        gateway_registry: str | None = None,
    ) -> None:
        endpoint = self.endpoint(service, gateway_registry)
        access = [self._grant(subject, endpoint, scope) for scope in scopes]
        catalog = any(s.type == "registry" and a["actions"] for s, a in zip(scopes, access, strict=True))
        token, lifetime = self.tokens.issue(
            subject.name,
            service,
            access,
            subject.credential,
            roles={str(k): v for k, v in subject.roles.items()} if catalog else None,
            registry_id=subject.registry_id if catalog else None,
        )
        body = {
            "token": token,
            "access_token": token,
            "expires_in": lifetime,
            "issued_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        if offline and subject.credential is not None:
            body["refresh_token"] = self.tokens.issue_refresh(subject.name, service, subject.credential)
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
        req.context.subject = subject  # the access log says whom the token was issued to
        service = req.get_param("service") or service_of(req)
        scopes = parse_scopes(req.get_param_as_list("scope") or [])
        offline = (req.get_param("offline_token") or "").lower() == "true"
        self.service.respond(resp, subject, service, scopes, offline, req.context.registry_header)

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
        req.context.subject = subject
        scope = form.get("scope") or ""
        scopes = parse_scopes(scope if isinstance(scope, list) else [scope])
        self.service.respond(
            resp, subject, service, scopes, form.get("access_type") == "offline", req.context.registry_header
        )

    def _refresh(self, value: object, service: str) -> Subject:
        claims = self.service.tokens.verify_refresh(value, service) if isinstance(value, str) else None
        token = find_live_token(claims["tid"], claims["tfp"], self.service.tokens.clock) if claims else None
        if token is None:
            raise RegistryError("UNAUTHORIZED", "invalid or expired refresh token; log in again")
        return for_access_token(token)


class JwksResource:
    def __init__(self, registry_tokens: RegistryTokens) -> None:
        self.tokens = registry_tokens

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.tokens.keys.jwks()
