"""Both Pulumi programs under `pulumi.runtime.set_mocks` (no engine, CLI or cluster can run here):
every resource they register is dumped as a manifest and validated against Kubernetes 1.31 and
the Gateway API / cert-manager CRDs, and checked for what the platform promises."""

from __future__ import annotations

import base64
import json

import pytest

from app.lifecycle.provisioner import RegistrySpec
from app.lifecycle.resources import (
    PULL_SECRETS_LABEL,
    REGISTRY_NAMESPACE_LABEL,
    PlatformRefs,
    registry_outputs,
)
from tests.infra.programs import PLATFORM_CONFIG, run_platform_program, run_registry_program
from tests.infra.schemas import validate

SPECS = {
    "plain": RegistrySpec(org="default", name="default", hostname="default.cr.example.test", pull_token="berth_p1"),
    "full": RegistrySpec(
        org="acme",
        name="team-a",
        hostname="team-a.cr.example.test",
        visibility="public",
        custom_domain="images.acme.test",
        pull_namespaces=("apps", "web", "apps"),
        pull_username="ci",
        pull_token="berth_secret_token",
        server="team-a.cr.example.test",
    ),
    "long-name": RegistrySpec(org="o", name="r" * 63, hostname=f"{'r' * 63}.cr.example.test", pull_token="t"),
}


@pytest.fixture(scope="module")
def registry_runs():
    return {key: run_registry_program(spec) for key, spec in SPECS.items()}


@pytest.fixture(scope="module")
def platform_run():
    return run_platform_program()


def by_name(registered):
    return {r.name: r for r in registered}


@pytest.mark.parametrize("key", SPECS)
def test_every_registry_resource_is_a_valid_manifest(registry_runs, crd_dir, key):
    registered, _ = registry_runs[key]
    assert registered
    for resource in registered:
        validate(resource.manifest)


def test_every_platform_resource_is_a_valid_manifest(platform_run, crd_dir):
    kinds = set()
    for resource in platform_run:
        validate(resource.manifest)
        kinds.add(resource.manifest["kind"])
    assert {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Certificate",
        "Gateway",
        "HTTPRoute",
        "NetworkPolicy",
    } <= kinds


def test_validation_catches_a_misspelt_field(crd_dir):
    """The validators are strict: a wrong field fails for core kinds and CRD kinds alike."""
    with pytest.raises(AssertionError, match="spec"):
        validate(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "x"},
                "spec": {"podSelectr": {}},
            }
        )
    with pytest.raises(AssertionError, match="issuerRef"):
        validate(
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": "x"},
                "spec": {"secretName": "s", "issuerRef": {"name": "i", "knd": "ClusterIssuer"}},
            }
        )
    with pytest.raises(AssertionError, match="port"):
        validate(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "ListenerSet",
                "metadata": {"name": "x"},
                "spec": {
                    "parentRef": {"name": "g"},
                    "listeners": [{"name": "https", "port": "443", "protocol": "HTTPS"}],
                },
            }
        )


def test_registry_footprint(registry_runs):
    registered, exported = registry_runs["full"]
    spec = SPECS["full"]
    resources = by_name(registered)
    ns = resources["namespace"].manifest
    assert ns["metadata"]["name"] == "registry-team-a"
    labels = ns["metadata"]["labels"]
    assert labels["berth.dev/org"] == "acme" and labels["berth.dev/registry"] == "team-a"
    assert labels[REGISTRY_NAMESPACE_LABEL] == "true" and labels[PULL_SECRETS_LABEL] == "true"

    cert = resources["certificate"].manifest
    assert cert["spec"]["dnsNames"] == ["team-a.cr.example.test", "images.acme.test"]
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "berth-issuer"}

    listeners = resources["listenerset"].manifest["spec"]["listeners"]
    assert [(entry["hostname"], entry["tls"]["certificateRefs"][0]["name"]) for entry in listeners] == [
        ("team-a.cr.example.test", cert["spec"]["secretName"]),
        ("images.acme.test", cert["spec"]["secretName"]),
    ]

    route = resources["httproute"].manifest["spec"]
    assert route["hostnames"] == ["team-a.cr.example.test", "images.acme.test"]
    (rule,) = route["rules"]
    assert rule["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"set": [{"name": "X-Berth-Registry", "value": "team-a"}]},
        }
    ]
    assert rule["backendRefs"][0] | {} == {
        "group": "",
        "kind": "Service",
        "name": "berth",
        "namespace": "berth",
        "port": 80,
    }
    grant = resources["referencegrant"].manifest
    assert grant["metadata"]["namespace"] == "berth"
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "registry-team-a"}
    ]

    deny = resources["networkpolicy-default-deny"].manifest
    assert deny["metadata"]["namespace"] == "registry-team-a"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    secrets = [r for r in registered if r.manifest["kind"] == "Secret"]
    assert sorted(s.manifest["metadata"]["namespace"] for s in secrets) == ["apps", "registry-team-a", "web"]
    for secret in secrets:
        assert secret.manifest["type"] == "kubernetes.io/dockerconfigjson"
        assert secret.secret_paths == ["data"], "the pull token must be a Pulumi secret"
        config = json.loads(base64.b64decode(secret.manifest["data"][".dockerconfigjson"]))
        auth = config["auths"]["team-a.cr.example.test"]
        assert (auth["username"], auth["password"]) == ("ci", "berth_secret_token")
        assert base64.b64decode(auth["auth"]).decode() == "ci:berth_secret_token"
    patches = [r for r in registered if r.type == "kubernetes:core/v1:NamespacePatch"]
    assert sorted(p.manifest["metadata"]["name"] for p in patches) == ["apps", "web"]
    assert all(p.manifest["metadata"]["labels"] == {PULL_SECRETS_LABEL: "true"} for p in patches)

    assert exported == registry_outputs(spec, PlatformRefs())
    assert exported["endpoint"] == "team-a.cr.example.test"
    assert exported["pull_secret"] == "berth-pull-team-a"
    assert exported["pull_secret_namespaces"] == "registry-team-a,apps,web"


def test_long_registry_names_get_a_namespace_that_fits(registry_runs):
    registered, exported = registry_runs["long-name"]
    name = by_name(registered)["namespace"].manifest["metadata"]["name"]
    assert len(name) <= 63 and name.startswith("registry-rrr") and exported["namespace"] == name


def test_objects_in_the_registry_namespace_depend_on_it():
    """A destroy deletes them before their namespace (Pulumi orders deletes by dependency)."""
    from app.lifecycle import pulumi_program
    from app.lifecycle.pulumi_program import declare_all
    from app.lifecycle.resources import registry_resources
    from tests.infra.programs import run_under_mocks

    # ResourceOptions are not kept on the resource object: watch what each declaration gets.
    seen = []
    real = pulumi_program.declare

    def spy(manifest, opts=None):
        seen.append((manifest.key, [getattr(d, "_name", None) for d in (opts.depends_on or [])]))
        return real(manifest, opts)

    pulumi_program.declare = spy
    try:
        run_under_mocks(lambda: list(declare_all(registry_resources(SPECS["full"], PlatformRefs())).values()))
    finally:
        pulumi_program.declare = real
    seen = dict(seen)
    for key in ("certificate", "listenerset", "httproute", "networkpolicy-default-deny", "pull-secret.registry-team-a"):
        assert seen[key] == ["namespace"], key
    assert seen["pull-secret.apps"] == ["pull-namespace.apps"]
    assert seen["referencegrant"] == []


def test_platform_deployment_is_hardened_and_probed(platform_run):
    resources = by_name(platform_run)
    deployment = resources["deployment"].manifest["spec"]
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert pod["serviceAccountName"] == resources["serviceaccount"].manifest["metadata"]["name"]

    service = resources["service"].manifest["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert resources["horizontalpodautoscaler"].manifest["spec"]["scaleTargetRef"]["name"] == "berth"
    assert resources["poddisruptionbudget"].manifest["spec"]["selector"]["matchLabels"] == service["selector"]


def test_platform_settings_reach_the_service_as_berth_variables(platform_run):
    """Every BERTH_* the ConfigMap and Secret set is a real setting of app/config.py, and secrets
    never sit in the ConfigMap."""
    from dataclasses import fields

    from app.config import Settings

    resources = by_name(platform_run)
    settings = resources["configmap"].manifest["data"]
    secret = resources["secret-settings"].manifest
    known = {"BERTH_" + f.name.upper() for f in fields(Settings)}
    for name in [*settings, *secret["stringData"]]:
        assert not name.startswith("BERTH_") or name in known, f"{name} is not a Berth setting"
    assert settings["BERTH_DOMAIN"] == "cr.example.test"
    assert settings["BERTH_TRUSTED_PROXIES"] == "10.8.0.0/14"
    assert settings["BERTH_PROVISIONER"] == "pulumi"
    assert settings["BERTH_OIDC_ISSUER"] == "https://idp.example.test/"
    assert settings["BERTH_RATE_LIMIT"] == "2000/10 minutes"
    assert "db-secret" not in json.dumps(settings)
    assert secret["stringData"]["BERTH_DATABASE_URL"] == PLATFORM_CONFIG["berth:databaseUrl"]
    assert resources["secret-settings"].secret_paths == ["stringData"]
    assert resources["secret-token-keys"].secret_paths == ["stringData"]


def test_platform_gateway_redirects_http_and_admits_registry_listenersets(platform_run):
    resources = by_name(platform_run)
    gateway = resources["gateway"].manifest["spec"]
    listeners = {entry["name"]: entry for entry in gateway["listeners"]}
    assert listeners["http"]["protocol"] == "HTTP" and listeners["https"]["protocol"] == "HTTPS"
    assert (
        listeners["https"]["tls"]["certificateRefs"][0]["name"]
        == resources["certificate"].manifest["spec"]["secretName"]
    )
    assert gateway["allowedListeners"]["namespaces"]["selector"]["matchLabels"] == {REGISTRY_NAMESPACE_LABEL: "true"}
    redirect = resources["httproute-redirect"].manifest["spec"]
    assert redirect["parentRefs"][0]["sectionName"] == "http"
    assert redirect["rules"] == [
        {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
    ]
    shared = resources["httproute"].manifest["spec"]
    assert shared["rules"][0]["filters"][0]["requestHeaderModifier"] == {"remove": ["X-Berth-Registry"]}


def test_platform_rbac_is_what_registry_stacks_need(platform_run):
    """The service account may manage exactly the kinds a registry footprint contains."""
    from app.lifecycle.resources import registry_resources

    resources = by_name(platform_run)
    cluster_rules = resources["clusterrole"].manifest["rules"]
    role_rules = resources["role"].manifest["rules"]

    def allowed(rules, group, plural, verb):
        return any(group in r["apiGroups"] and plural in r["resources"] and verb in r["verbs"] for r in rules)

    for manifest in registry_resources(SPECS["full"], PlatformRefs()):
        body = manifest.body
        group = body["apiVersion"].rpartition("/")[0]
        kind = body["kind"].lower()
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + ("es" if kind.endswith("s") else "s")
        rules = role_rules if body["metadata"].get("namespace") == "berth" else cluster_rules
        for verb in ("get", "create", "patch", "delete"):
            assert allowed(rules, group, plural, verb), f"{verb} {group}/{plural}"
    assert not any("*" in r[k] for r in cluster_rules + role_rules for k in ("apiGroups", "resources", "verbs"))


def test_platform_network_policies(platform_run):
    resources = by_name(platform_run)
    deny = resources["networkpolicy-default-deny"].manifest
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    berth = resources["networkpolicy-berth"].manifest["spec"]
    proxies, monitoring = berth["ingress"]
    assert proxies["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert proxies["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "envoy-gateway-system"
    }
    # The metrics port only from the monitoring namespace (berth:monitoringNamespace).
    assert monitoring == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
        "ports": [{"protocol": "TCP", "port": 9464}],
    }


def test_platform_pods_are_scraped_on_a_metrics_port_of_their_own(platform_run):
    resources = by_name(platform_run)
    template = resources["deployment"].manifest["spec"]["template"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 5000, "metrics": 9464}
    assert resources["configmap"].manifest["data"]["BERTH_METRICS_ADDR"] == "0.0.0.0:9464"
    annotations = template["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9464",
        "prometheus.io/path": "/metrics",
    }


def test_no_service_a_route_reaches_exposes_the_metrics_port(platform_run, registry_runs):
    """Every registry hostname's HTTPRoute (and the shared endpoint's) sends `/` to a Service:
    none of those may lead to the metrics port, by name or by number."""
    manifests = [r.manifest for r in platform_run]
    for registered, _ in registry_runs.values():
        manifests += [r.manifest for r in registered]
    backends = {
        (ref.get("namespace", m["metadata"]["namespace"]), ref["name"])
        for m in manifests
        if m["kind"] == "HTTPRoute"
        for rule in m["spec"]["rules"]
        for ref in rule.get("backendRefs", [])
    }
    services = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests if m["kind"] == "Service"}
    assert backends and backends <= services.keys()
    for key in backends:
        for port in services[key]["spec"]["ports"]:
            assert port["targetPort"] == "http" and port["port"] != 9464, (key, port)


def test_the_metrics_port_cannot_be_the_service_port():
    from infra.platform_resources import PORT, PlatformConfig, platform_resources

    config = PlatformConfig(
        image="i",
        domain="d.test",
        gateway_class="eg",
        storage_url="gs://b",
        trusted_proxies="10.0.0.0/8",
        database_url="postgresql://x",
        token_signing_key="k",
        metrics_port=PORT,
    )
    with pytest.raises(ValueError, match="metricsPort"):
        platform_resources(config)


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/example/berth:0.1.0",
        "ghcr.io/example/berth",
        "ghcr.io/example/berth@sha256:abc",
        "berth:1@sha256:" + "A" * 64,
    ],
)
def test_an_image_not_named_by_digest_is_refused(image):
    with pytest.raises(Exception, match="by digest"):
        run_platform_program({**PLATFORM_CONFIG, "berth:image": image})


def test_platform_needs_its_required_config():
    config = {k: v for k, v in PLATFORM_CONFIG.items() if k != "berth:domain"}
    with pytest.raises(Exception, match="domain"):
        run_platform_program(config)
