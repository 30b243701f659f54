"""Pull and push credentials for one registry, ready to use: docker login values, a
`dockerconfigjson` document, and a Kubernetes Secret of type `kubernetes.io/dockerconfigjson`."""

from __future__ import annotations

import base64
import json

from app.auth.subject import Subject
from app.db.models import AccessToken, Registry
from app.services import tokens


def dockerconfig(servers: list[str], username: str, password: str) -> dict:
    """The Docker client's config.json `auths` for these registry hosts (also what skopeo and
    podman read as an auth file, and what a kubelet reads from a pull Secret)."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {server: {"username": username, "password": password, "auth": auth} for server in servers}}


def kubernetes_secret(name: str, namespace: str | None, config: dict) -> dict:
    metadata: dict = {"name": name, "labels": {"app.kubernetes.io/managed-by": "berth"}}
    if namespace:
        metadata["namespace"] = namespace
    encoded = base64.b64encode(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": encoded},
    }


def issue(
    registry: Registry,
    creator: Subject,
    *,
    name: str,
    push: bool,
    expires_in: object,
    servers: list[str],
    secret_name: str,
    namespace: str | None,
) -> tuple[AccessToken, dict]:
    """A registry-scoped token (pull-only unless `push`) and everything needed to use it (the
    secret, the docker login values and the documents made of them)."""
    token, secret = tokens.create_token(
        registry.org, creator, name, scope="push" if push else "pull", registry=registry.name, expires_in=expires_in
    )
    username = f"token-{token.id}"  # any user name works with a token; this one says which
    config = dockerconfig(servers, username, secret)
    return token, {
        "username": username,
        "password": secret,
        "servers": servers,
        "docker_login": f"docker login {servers[0]} --username {username} --password-stdin",
        "dockerconfigjson": config,
        "kubernetes_secret": kubernetes_secret(secret_name, namespace, config),
    }
