"""`POST /api/v1/orgs/{org}/registries/{registry}/credentials`: a registry-scoped token with its
docker login values, dockerconfigjson and Kubernetes pull Secret. The secret is in this
response only."""

from __future__ import annotations

import re

import falcon

from app.api.tokens import render_token
from app.auth import roles
from app.config import DEFAULT_DOMAIN
from app.edge import media
from app.services import docker_config
from app.spec.errors import RegistryError

# Credentials expire unless asked otherwise (`"expires_in": null` for never): a forgotten pull
# Secret should not hold a working password for ever.
DEFAULT_EXPIRY = "90d"
_K8S_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\Z")
_K8S_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")


class CredentialsResource:
    permissions = {"POST": roles.CREATE_TOKEN}
    idempotent = ("POST",)
    # Withheld from Idempotency-Key replays (app/api/idempotency.py): each holds the password.
    secret_fields = ("password", "dockerconfigjson", "kubernetes_secret")
    audit = {"POST": "credentials.create"}

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def on_post(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        body = media.object_of(
            req,
            example='{"push": false, "expires_in": "30d", "k8s_secret_name": "pull"}',
            allowed={"name", "push", "expires_in", "k8s_secret_name", "namespace"},
            optional=True,
        )
        push = body.get("push", False)
        if not isinstance(push, bool):
            raise RegistryError("INVALID", "push must be true or false", field="push")
        registry_ = req.context.registry
        secret_name = media.string_field(body, "k8s_secret_name", max_length=253) or f"{registry_.name}-pull"
        namespace = media.string_field(body, "namespace", max_length=63)
        if not _K8S_NAME.fullmatch(secret_name):
            raise RegistryError(
                "INVALID",
                "k8s_secret_name must be a Kubernetes object name (lowercase letters, digits, '-' and '.')",
                field="k8s_secret_name",
            )
        if namespace is not None and not _K8S_LABEL.fullmatch(namespace):
            raise RegistryError("INVALID", "namespace must be a Kubernetes namespace name", field="namespace")
        servers = [f"{registry_.name}.{self.domain}", req.netloc]
        if self.domain == DEFAULT_DOMAIN:  # nothing resolves the host form: the one that works first
            servers.reverse()
        token, issued = docker_config.issue(
            registry_,
            req.context.subject,
            name=body.get("name", f"{registry_.name}-{'push' if push else 'pull'}"),
            push=push,
            expires_in=body.get("expires_in", DEFAULT_EXPIRY),
            servers=servers,
            secret_name=secret_name,
            namespace=namespace,
        )
        req.context.audit_detail = {"token_id": token.id, "token_name": token.name, "push": push}
        req.context.secret = issued["password"]
        resp.status = falcon.HTTP_201
        resp.location = f"/api/v1/orgs/{org}/tokens/{token.id}"
        resp.media = {"token": render_token(token), **issued}
