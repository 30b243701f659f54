"""A registry as the API shows it: endpoints, settings, usage and its latest operation."""

from __future__ import annotations

import falcon.testing

from app.api.registries import render_manifest_policy, render_registry
from app.db.models import Operation, Registry
from app.services import manifest_policy
from tests.unit.api.conftest import ISO, T


def test_a_manifest_policy_shows_its_mode_and_platforms():
    assert render_manifest_policy(manifest_policy.Policy()) == {"mode": "strict", "required_platforms": []}
    policy = manifest_policy.validate({"mode": "index-sparse", "required_platforms": ["linux/arm64", "linux/amd64"]})
    assert render_manifest_policy(policy) == {
        "mode": "index-sparse",
        "required_platforms": ["linux/amd64", "linux/arm64"],
    }


def test_a_registry_with_its_endpoints_usage_and_latest_operation(org):
    registry = Registry.create(org=org, name="r", created_at=T, created_by="alice", pull_namespaces='["ci"]')
    req = falcon.testing.create_req(host="berth.example", port=5000)
    body = render_registry(registry, req, "registry.example")
    assert list(body) == [
        "name",
        "org",
        "visibility",
        "status",
        "endpoint",
        "path_endpoint",
        "custom_domain",
        "custom_domain_status",
        "custom_domain_verification",
        "pull_namespaces",
        "created_at",
        "created_by",
        "links",
        "sku",
        "immutable_tags",
        "manifest_policy",
        "usage",
        "quota",
    ]
    assert body["endpoint"] == "r.registry.example" and body["path_endpoint"] == "berth.example:5000/r"
    assert body["created_at"] == ISO and body["pull_namespaces"] == ["ci"] and body["org"] == "o"
    assert body["usage"] == {"stored_bytes": 0, "blobs": 0, "repositories": 0, "tags": 0, "manifests": 0}
    assert body["links"] == {"self": "/api/v1/orgs/o/registries/r"}
    Operation.create(id="op-1", org=org, registry=registry, registry_name="r", kind="create")
    body = render_registry(registry, req, "registry.example", with_usage=False)
    assert body["links"]["operation"] == "/api/v1/operations/op-1" and "usage" not in body
