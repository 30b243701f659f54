"""A registry's Kubernetes footprint as a pure function of its spec: names Kubernetes accepts,
a pull Secret that logs in to the registry's host, a route that sets (never adds) the registry
header, workload namespaces labelled but never owned, and outputs both provisioners report."""

from __future__ import annotations

import base64
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.lifecycle import resources
from app.lifecycle.provisioner import RegistrySpec
from app.lifecycle.resources import PlatformRefs

SPEC = RegistrySpec(
    org="acme",
    name="images",
    hostname="images.registry.example",
    custom_domain="cr.acme.com",
    pull_namespaces=("web", "registry-images", "api", "web"),
    pull_token="berth_pull",
)


def _by_key(manifests):
    return {m.key: m for m in manifests}


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True))
@example("a" * 55)  # past 63 characters with its prefix: shortened, and still its own
@example("a" * 62)
def test_the_registry_namespace_is_a_dns_label_distinct_per_registry(name):
    namespace = resources.registry_namespace(name)
    assert len(namespace) <= 63 and resources._DNS_LABEL.fullmatch(namespace)
    assert resources.registry_namespace(name + "x") != namespace


def test_the_footprint_starts_with_its_namespace_and_keys_are_unique():
    manifests = resources.registry_resources(SPEC, PlatformRefs())
    assert manifests[0].body["kind"] == "Namespace" and manifests[0].body["metadata"]["name"] == "registry-images"
    assert len({m.key for m in manifests}) == len(manifests)


def test_the_pull_secret_logs_in_to_the_registry_s_host_in_every_pull_namespace():
    by_key = _by_key(resources.registry_resources(SPEC, PlatformRefs()))
    secrets = [m for m in by_key.values() if m.body["kind"] == "Secret"]
    assert sorted(m.body["metadata"]["namespace"] for m in secrets) == ["api", "registry-images", "web"]
    config = json.loads(base64.b64decode(secrets[0].body["data"][".dockerconfigjson"]))
    entry = config["auths"]["images.registry.example"]
    assert (entry["username"], entry["password"]) == ("berth", "berth_pull")
    assert base64.b64decode(entry["auth"]).decode() == "berth:berth_pull"


def test_workload_namespaces_are_patched_with_a_label_and_never_pruned():
    by_key = _by_key(resources.registry_resources(SPEC, PlatformRefs()))
    web = by_key["pull-namespace.web"]
    assert web.patch and web.body["metadata"]["labels"] == {resources.PULL_SECRETS_LABEL: "true"}
    assert "Prune=false" in web.body["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert "pull-namespace.registry-images" not in by_key  # its own namespace is not a workload's


def test_the_route_sets_the_registry_header_for_both_hostnames():
    refs = PlatformRefs(registry_header="X-Which", namespace="platform", service="svc", service_port=8080)
    by_key = _by_key(resources.registry_resources(SPEC, refs))
    route = by_key["httproute"].body["spec"]
    assert route["hostnames"] == ["images.registry.example", "cr.acme.com"]
    (rule,) = route["rules"]
    assert rule["filters"][0]["requestHeaderModifier"] == {"set": [{"name": "X-Which", "value": "images"}]}
    assert rule["backendRefs"][0] == {
        "group": "",
        "kind": "Service",
        "name": "svc",
        "namespace": "platform",
        "port": 8080,
    }
    assert by_key["certificate"].body["spec"]["dnsNames"] == ["images.registry.example", "cr.acme.com"]
    assert by_key["referencegrant"].body["metadata"]["namespace"] == "platform"


def test_the_outputs_name_what_was_made():
    outputs = resources.registry_outputs(SPEC, PlatformRefs())
    assert outputs == {
        "endpoint": "images.registry.example",
        "namespace": "registry-images",
        "pull_secret": "berth-pull-images",
        "pull_secret_namespaces": "registry-images,api,web",
        "tls_secret": "registry-tls",
        "custom_domain": "cr.acme.com",
    }
