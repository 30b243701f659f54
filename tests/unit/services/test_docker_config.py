"""Ready-to-use pull credentials on a real SQLite database: a docker config every client reads
(the `auth` field is `user:password` in base64), a Kubernetes Secret of the dockerconfigjson type
holding exactly that config, and a token issued for them that is scoped to the registry and
pull-only unless push is asked for."""

from __future__ import annotations

import base64
import json

import pytest

from app.auth.subject import Subject
from app.auth.token_secrets import find_token
from app.db.models import Organization, Registry
from app.services import docker_config


def test_the_config_carries_the_credentials_for_every_server():
    config = docker_config.dockerconfig(["a.example", "b.example:5000"], "token-1", "berth_x:y")
    assert set(config["auths"]) == {"a.example", "b.example:5000"}
    entry = config["auths"]["b.example:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "token-1:berth_x:y"


def test_the_secret_holds_the_config_in_its_namespace():
    config = docker_config.dockerconfig(["a.example"], "u", "p")
    secret = docker_config.kubernetes_secret("pull", "apps", config)
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and secret["metadata"]["namespace"] == "apps"
    assert json.loads(base64.b64decode(secret["data"][".dockerconfigjson"])) == config
    assert "namespace" not in docker_config.kubernetes_secret("pull", None, config)["metadata"]


@pytest.mark.parametrize("push, role", [(False, "reader"), (True, "developer")])
def test_the_issued_token_is_scoped_to_the_registry(database, push, role):
    org = Organization.create(name="o")
    registry = Registry.create(org=org, name="r")
    token, body = docker_config.issue(
        registry,
        Subject(name="alice", roles={org.id: "owner"}),
        name="ci",
        push=push,
        expires_in="1d",
        servers=["r.example"],
        secret_name="pull",
        namespace=None,
    )
    assert find_token(body["password"]).id == token.id
    assert (token.role, token.registry_id) == (role, registry.id)
    assert body["username"] == f"token-{token.id}" and body["docker_login"].startswith("docker login r.example ")
    assert body["password"] not in body["docker_login"]
    assert body["dockerconfigjson"]["auths"]["r.example"]["password"] == body["password"]
