"""The policy pack (policies/): every rule over every resource both programs register, with zero
violations; each rule with a compliant and a violating resource; and the CrossGuard wrappers,
driven without the Pulumi CLI (constructing the real PolicyPack would start a server and block)."""

from __future__ import annotations

import copy
import runpy
from types import SimpleNamespace

import pulumi_policy
import pytest

from app.lifecycle import resources as footprint
from app.lifecycle.provisioner import RegistrySpec
from policies import rules
from policies.rules import PolicyConfig, violations
from tests.infra.programs import ROOT, run_platform_program, run_registry_program

CONFIG = PolicyConfig()
SPEC = RegistrySpec(
    org="acme",
    name="team-a",
    hostname="team-a.cr.example.test",
    custom_domain="images.acme.test",
    pull_namespaces=("apps", "web"),
    pull_token="berth_tok",
)


@pytest.fixture(scope="module")
def platform_resources():
    return [(r.type, r.manifest) for r in run_platform_program()]


@pytest.fixture(scope="module")
def registry_resources():
    return [(r.type, r.manifest) for r in run_registry_program(SPEC)[0]]


def test_platform_program_passes_every_policy(platform_resources):
    assert violations(platform_resources) == []


def test_registry_program_passes_every_policy(registry_resources):
    assert violations(registry_resources) == []


def test_rules_use_the_footprints_names():
    assert rules.PULL_SECRETS_LABEL == footprint.PULL_SECRETS_LABEL
    assert rules.GATEWAY_GROUP == footprint.GATEWAY_GROUP
    refs = footprint.PlatformRefs()
    assert (CONFIG.platform_namespace, CONFIG.gateway, CONFIG.https_listener, CONFIG.issuer, CONFIG.issuer_kind) == (
        refs.namespace,
        refs.gateway,
        refs.https_listener,
        refs.issuer,
        refs.issuer_kind,
    )


def _find(resources, kind, name=None):
    for resource_type, props in resources:
        if resource_type.endswith(":" + kind) and (name is None or props["metadata"]["name"] == name):
            return resource_type, copy.deepcopy(props)
    raise LookupError(kind)


def _check(rule_name, resource_type, props, config=CONFIG):
    rule = next(r for r in rules.RULES if r.name == rule_name)
    return rule.check(resource_type, props, config)


# -- resource rules: one compliant and at least one violating resource each ----------------------


def test_no_exposed_services(platform_resources):
    t, service = _find(platform_resources, "Service")
    assert _check("no-exposed-services", t, service) == []
    for kind in ("LoadBalancer", "NodePort"):
        service["spec"]["type"] = kind
        assert _check("no-exposed-services", t, service) == [
            f"Service berth is type {kind}: traffic enters only through the Gateway"
        ]


def test_certificates_use_platform_issuer(registry_resources):
    t, cert = _find(registry_resources, "Certificate")
    assert _check("certificates-use-platform-issuer", t, cert) == []
    cert["spec"]["issuerRef"] = {"name": "letsencrypt-staging", "kind": "Issuer"}
    assert len(_check("certificates-use-platform-issuer", t, cert)) == 1
    cert["spec"]["issuerRef"] = {"name": "berth-issuer", "kind": "ClusterIssuer", "group": "example.com"}
    assert len(_check("certificates-use-platform-issuer", t, cert)) == 1
    # Another platform issuer, configured: the same certificate is then the violating one.
    t, cert = _find(registry_resources, "Certificate")
    assert _check("certificates-use-platform-issuer", t, cert, PolicyConfig(issuer="corp-ca")) != []


def test_routes_attach_to_platform_https(registry_resources, platform_resources):
    name = "routes-attach-to-platform-https"
    t, route = _find(registry_resources, "HTTPRoute")
    assert _check(name, t, route) == []
    t, shared = _find(platform_resources, "HTTPRoute", "berth")
    assert _check(name, t, shared) == []
    t, redirect = _find(platform_resources, "HTTPRoute", "berth-https-redirect")
    assert _check(name, t, redirect) == []

    plain_http = copy.deepcopy(shared)
    plain_http["spec"]["parentRefs"][0]["sectionName"] = "http"
    assert "only 'https'" in _check(name, t, plain_http)[0]
    other_gateway = copy.deepcopy(shared)
    other_gateway["spec"]["parentRefs"][0].update(name="public", namespace="default")
    assert "not the platform Gateway" in _check(name, t, other_gateway)[0]
    redirect_with_backend = copy.deepcopy(redirect)
    redirect_with_backend["spec"]["rules"][0]["backendRefs"] = [{"name": "berth", "port": 80}]
    assert _check(name, t, redirect_with_backend) != []
    foreign_listenerset = copy.deepcopy(route)
    foreign_listenerset["spec"]["parentRefs"][0]["namespace"] = "registry-other"
    assert "another namespace" in _check(name, t, foreign_listenerset)[0]
    no_parent = copy.deepcopy(route)
    no_parent["spec"]["parentRefs"] = []
    assert _check(name, t, no_parent) == ["HTTPRoute registry has no parentRefs"]


def test_listenersets_extend_platform_https(registry_resources):
    name = "listenersets-extend-platform-https"
    t, listenerset = _find(registry_resources, "ListenerSet")
    assert _check(name, t, listenerset) == []
    plain = copy.deepcopy(listenerset)
    plain["spec"]["listeners"][0].update(protocol="HTTP", port=80)
    del plain["spec"]["listeners"][0]["tls"]
    assert len(_check(name, t, plain)) == 1
    passthrough = copy.deepcopy(listenerset)
    passthrough["spec"]["listeners"][1]["tls"]["mode"] = "Passthrough"
    assert len(_check(name, t, passthrough)) == 1
    elsewhere = copy.deepcopy(listenerset)
    elsewhere["spec"]["parentRef"]["name"] = "other"
    assert "not the platform Gateway" in _check(name, t, elsewhere)[0]


def test_pods_are_restricted(platform_resources):
    name = "pods-are-restricted"
    t, deployment = _find(platform_resources, "Deployment")
    assert _check(name, t, deployment) == []

    def container(d):
        return d["spec"]["template"]["spec"]["containers"][0]

    root = copy.deepcopy(deployment)
    del root["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    del container(root)["securityContext"]["runAsNonRoot"]
    assert ["may run as root" in m for m in _check(name, t, root)] == [True]
    uid0 = copy.deepcopy(deployment)
    container(uid0)["securityContext"]["runAsUser"] = 0
    assert len(_check(name, t, uid0)) == 1
    escalate = copy.deepcopy(deployment)
    del container(escalate)["securityContext"]["allowPrivilegeEscalation"]
    assert ["escalate" in m for m in _check(name, t, escalate)] == [True]
    unlimited = copy.deepcopy(deployment)
    del container(unlimited)["resources"]["limits"]["memory"]
    assert _check(name, t, unlimited) == ["Deployment berth container berth has no memory limit"]
    pod = {"metadata": {"name": "debug"}, "spec": {"containers": [{"name": "sh", "image": "busybox"}]}}
    assert len(_check(name, "kubernetes:core/v1:Pod", pod)) == 3


def test_rbac_is_least(platform_resources):
    name = "rbac-is-least"
    t, role = _find(platform_resources, "ClusterRole")
    assert _check(name, t, role) == []
    wildcard = copy.deepcopy(role)
    wildcard["rules"][0]["verbs"] = ["*"]
    assert len(_check(name, t, wildcard)) == 1
    t, binding = _find(platform_resources, "ClusterRoleBinding")
    assert _check(name, t, binding) == []
    binding["roleRef"]["name"] = "cluster-admin"
    assert len(_check(name, t, binding)) == 1


# -- stack rules ----------------------------------------------------------------------------------


def test_pull_secrets_in_labelled_namespaces(registry_resources):
    rule = rules.pull_secrets_in_labelled_namespaces
    assert rule(registry_resources, CONFIG) == []
    # Without the label on the workload namespace, its pull Secret is a violation.
    unlabelled = [
        (t, p) for t, p in registry_resources if not (t.endswith("NamespacePatch") and p["metadata"]["name"] == "apps")
    ]
    assert rule(unlabelled, CONFIG) == [
        "pull Secret berth-pull-team-a is in namespace apps, which this stack does not label "
        "berth.dev/pull-secrets=true"
    ]
    stray = [
        *registry_resources,
        (
            "kubernetes:core/v1:Secret",
            {"type": "kubernetes.io/dockerconfigjson", "metadata": {"name": "leak", "namespace": "kube-system"}},
        ),
    ]
    assert len(rule(stray, CONFIG)) == 1
    opaque = [
        *registry_resources,
        ("kubernetes:core/v1:Secret", {"type": "Opaque", "metadata": {"name": "fine", "namespace": "kube-system"}}),
    ]
    assert rule(opaque, CONFIG) == []


def test_namespaces_default_deny(registry_resources, platform_resources):
    rule = rules.namespaces_default_deny
    assert rule(registry_resources, CONFIG) == [] and rule(platform_resources, CONFIG) == []
    without = [(t, p) for t, p in registry_resources if not t.endswith(":NetworkPolicy")]
    assert rule(without, CONFIG) == [
        "namespace registry-team-a has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)"
    ]
    leaky = [(t, copy.deepcopy(p)) for t, p in registry_resources]
    for t, p in leaky:
        if t.endswith(":NetworkPolicy"):
            p["spec"]["ingress"] = [{}]
    assert len(rule(leaky, CONFIG)) == 1


# -- the CrossGuard wrappers -----------------------------------------------------------------------


def test_pack_wraps_every_rule_and_reports_through_crossguard(monkeypatch, registry_resources):
    packs = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: packs.append(kwargs))
    monkeypatch.syspath_prepend(str(ROOT / "policies"))
    runpy.run_path(str(ROOT / "policies" / "__main__.py"))
    (pack,) = packs
    assert pack["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    policies = {p.name: p for p in pack["policies"]}
    assert set(policies) == {r.name for r in rules.RULES}

    reported = []
    t, service = _find(
        registry_resources
        + [("kubernetes:core/v1:Service", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}})],
        "Service",
    )
    args = SimpleNamespace(resource_type=t, props=service, get_config=lambda: {})
    policies["no-exposed-services"].validate(args, reported.append)
    assert reported == ["Service lb is type LoadBalancer: traffic enters only through the Gateway"]

    reported.clear()
    t, cert = _find(registry_resources, "Certificate")
    args = SimpleNamespace(resource_type=t, props=cert, get_config=lambda: {"issuer": "corp-ca"})
    policies["certificates-use-platform-issuer"].validate(args, reported.append)
    assert len(reported) == 1 and "corp-ca" in reported[0]

    reported.clear()
    stack = SimpleNamespace(
        resources=[SimpleNamespace(resource_type=t, props=p) for t, p in registry_resources], get_config=lambda: {}
    )
    policies["namespaces-default-deny"].validate(stack, reported.append)
    policies["pull-secrets-in-labelled-namespaces"].validate(stack, reported.append)
    assert reported == []
