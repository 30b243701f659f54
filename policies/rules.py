"""The rules of the Berth policy pack, as plain functions over (resource type, props).

`__main__.py` wraps them in CrossGuard policies; tests call them directly. This module imports
nothing but the standard library: the pack runs in a virtualenv of its own, without Berth. Its
names (labels, platform objects) are the ones app/lifecycle/resources.py uses; a test keeps the
two in step.

A resource rule is `check(resource_type, props, config) -> [violation message, ...]`; a stack
rule is `check([(resource_type, props), ...], config) -> [...]`. `resource_type` is a Pulumi
type token such as `kubernetes:apps/v1:Deployment`; `props` are the object's fields (camelCase).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

PULL_SECRETS_LABEL = "berth.dev/pull-secrets"
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
GATEWAY_GROUP = "gateway.networking.k8s.io"
WORKLOAD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


@dataclass(frozen=True)
class PolicyConfig:
    """The platform's names (policy config keys are the camelCase field names)."""

    platform_namespace: str = "berth"
    gateway: str = "berth"
    https_listener: str = "https"
    issuer: str = "berth-issuer"
    issuer_kind: str = "ClusterIssuer"

    @classmethod
    def from_dict(cls, values: dict | None) -> PolicyConfig:
        values = values or {}
        known = {f.name: camel(f.name) for f in fields(cls)}
        return cls(**{name: values[key] for name, key in known.items() if values.get(key)})


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable
    stack: bool = False  # a stack rule sees every resource of the stack at once


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def kind_of(resource_type: str) -> tuple[str, bool]:
    """(`Kind`, is_patch) of a Kubernetes resource type token; ("", False) for anything else."""
    if not resource_type.startswith("kubernetes:"):
        return "", False
    kind = resource_type.rsplit(":", 1)[-1]
    if kind.endswith("Patch"):
        return kind[: -len("Patch")], True
    return kind, False


def _meta(props: dict) -> dict:
    return props.get("metadata") or {}


# -- resource rules ------------------------------------------------------------------------------


def no_exposed_services(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    if kind_of(resource_type)[0] != "Service":
        return []
    kind = (props.get("spec") or {}).get("type") or "ClusterIP"
    if kind in ("LoadBalancer", "NodePort"):
        return [f"Service {_meta(props).get('name')} is type {kind}: traffic enters only through the Gateway"]
    return []


def certificates_use_platform_issuer(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    if kind_of(resource_type)[0] != "Certificate" or "cert-manager.io" not in resource_type:
        return []
    ref = (props.get("spec") or {}).get("issuerRef") or {}
    if (ref.get("name"), ref.get("kind") or "Issuer", ref.get("group") or "cert-manager.io") != (
        config.issuer,
        config.issuer_kind,
        "cert-manager.io",
    ):
        return [
            f"Certificate {_meta(props).get('name')} uses issuer {ref.get('kind')}/{ref.get('name')}: "
            f"every certificate comes from the platform issuer {config.issuer_kind}/{config.issuer}"
        ]
    return []


def _is_https_redirect_only(spec: dict) -> bool:
    rules = spec.get("rules") or []
    return bool(rules) and all(
        not rule.get("backendRefs")
        and any(
            f.get("type") == "RequestRedirect" and (f.get("requestRedirect") or {}).get("scheme") == "https"
            for f in rule.get("filters") or []
        )
        for rule in rules
    )


def routes_attach_to_platform_https(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    """An HTTPRoute attaches to the platform Gateway's HTTPS listener, or to a ListenerSet in its own
    namespace (whose listeners the ListenerSet rule holds to HTTPS on that Gateway). The one route
    allowed on plain HTTP only redirects to HTTPS."""
    if kind_of(resource_type)[0] != "HTTPRoute":
        return []
    spec = props.get("spec") or {}
    namespace = _meta(props).get("namespace")
    name = _meta(props).get("name")
    refs = spec.get("parentRefs") or []
    if not refs:
        return [f"HTTPRoute {name} has no parentRefs"]
    out = []
    for ref in refs:
        group, kind = ref.get("group", GATEWAY_GROUP), ref.get("kind") or "Gateway"
        ref_ns = ref.get("namespace") or namespace
        if group != GATEWAY_GROUP:
            out.append(f"HTTPRoute {name} attaches to {group}/{kind}: only Gateway API parents are allowed")
        elif kind == "ListenerSet":
            if ref_ns != namespace:
                out.append(f"HTTPRoute {name} attaches to a ListenerSet in another namespace ({ref_ns})")
        elif kind == "Gateway":
            if (ref.get("name"), ref_ns) != (config.gateway, config.platform_namespace):
                out.append(
                    f"HTTPRoute {name} attaches to Gateway {ref_ns}/{ref.get('name')}, "
                    f"not the platform Gateway {config.platform_namespace}/{config.gateway}"
                )
            elif ref.get("sectionName") != config.https_listener and not _is_https_redirect_only(spec):
                out.append(
                    f"HTTPRoute {name} attaches to listener {ref.get('sectionName') or '(all)'} of the "
                    f"platform Gateway: only {config.https_listener!r} (or an HTTPS redirect) is allowed"
                )
        else:
            out.append(f"HTTPRoute {name} attaches to a {kind}: only the platform Gateway or a ListenerSet")
    return out


def listenersets_extend_platform_https(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    if kind_of(resource_type)[0] != "ListenerSet":
        return []
    spec = props.get("spec") or {}
    name = _meta(props).get("name")
    ref = spec.get("parentRef") or {}
    out = []
    if (ref.get("kind") or "Gateway", ref.get("name"), ref.get("namespace")) != (
        "Gateway",
        config.gateway,
        config.platform_namespace,
    ):
        out.append(
            f"ListenerSet {name} attaches to {ref.get('namespace')}/{ref.get('name')}, "
            f"not the platform Gateway {config.platform_namespace}/{config.gateway}"
        )
    for listener in spec.get("listeners") or []:
        tls = listener.get("tls") or {}
        if (
            listener.get("protocol") != "HTTPS"
            or (tls.get("mode") or "Terminate") != "Terminate"
            or not tls.get("certificateRefs")
        ):
            out.append(
                f"ListenerSet {name} listener {listener.get('name')}: only HTTPS listeners that "
                "terminate TLS with a certificate"
            )
    return out


def pods_are_restricted(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    """Every container runs as non-root, cannot escalate privileges, and has CPU and memory limits."""
    kind = kind_of(resource_type)[0]
    if kind not in WORKLOAD_KINDS:
        return []
    spec = props.get("spec") or {}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = spec if kind == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    pod_sc = pod.get("securityContext") or {}
    name = _meta(props).get("name")
    out = []
    containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    if not containers:
        out.append(f"{kind} {name} has no containers")
    for container in containers:
        sc = container.get("securityContext") or {}
        who = f"{kind} {name} container {container.get('name')}"
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if non_root is not True or user == 0:
            out.append(f"{who} may run as root: set runAsNonRoot: true")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{who} may escalate privileges: set allowPrivilegeEscalation: false")
        if sc.get("privileged"):
            out.append(f"{who} is privileged")
        limits = (container.get("resources") or {}).get("limits") or {}
        missing = [r for r in ("cpu", "memory") if not limits.get(r)]
        if missing:
            out.append(f"{who} has no {' or '.join(missing)} limit")
    return out


def rbac_is_least(resource_type: str, props: dict, config: PolicyConfig) -> list[str]:
    kind = kind_of(resource_type)[0]
    name = _meta(props).get("name")
    if kind in ("Role", "ClusterRole"):
        out = []
        for rule in props.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(key) or []):
                    out.append(f"{kind} {name} grants '*' in {key}: name what is needed")
            if any(v in (rule.get("verbs") or []) for v in ("escalate", "bind", "impersonate")):
                out.append(f"{kind} {name} grants escalate/bind/impersonate")
        return out
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        if (props.get("roleRef") or {}).get("name") in ("cluster-admin", "admin", "edit"):
            return [f"{kind} {name} binds the built-in {props['roleRef']['name']} role"]
    return []


# -- stack rules ---------------------------------------------------------------------------------


def _namespaces(resources) -> dict[str, tuple[dict, bool]]:
    out = {}
    for resource_type, props in resources:
        kind, patch = kind_of(resource_type)
        if kind == "Namespace":
            out[_meta(props).get("name")] = (_meta(props).get("labels") or {}, patch)
    return out


def pull_secrets_in_labelled_namespaces(resources, config: PolicyConfig) -> list[str]:
    """A dockerconfigjson Secret only goes into a namespace the same stack labels
    `berth.dev/pull-secrets: "true"` (its registry's own, or a workload namespace it was listed for)."""
    labelled = {
        name for name, (labels, _) in _namespaces(resources).items() if labels.get(PULL_SECRETS_LABEL) == "true"
    }
    out = []
    for resource_type, props in resources:
        if kind_of(resource_type)[0] == "Secret" and props.get("type") == DOCKERCONFIGJSON:
            namespace = _meta(props).get("namespace")
            if namespace not in labelled:
                out.append(
                    f"pull Secret {_meta(props).get('name')} is in namespace {namespace}, which this "
                    f"stack does not label {PULL_SECRETS_LABEL}=true"
                )
    return out


def _is_default_deny(props: dict) -> bool:
    spec = props.get("spec") or {}
    return (
        (spec.get("podSelector") in ({}, None) or spec.get("podSelector") == {"matchLabels": {}})
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def namespaces_default_deny(resources, config: PolicyConfig) -> list[str]:
    """Every namespace a stack creates (a registry's, the platform's) has a default-deny NetworkPolicy."""
    denied = {
        _meta(props).get("namespace")
        for resource_type, props in resources
        if kind_of(resource_type) == ("NetworkPolicy", False) and _is_default_deny(props)
    }
    return [
        f"namespace {name} has no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, no rules)"
        for name, (_, patch) in sorted(_namespaces(resources).items())
        if not patch and name not in denied
    ]


RULES = [
    Rule(
        "no-exposed-services",
        "No LoadBalancer or NodePort Services: traffic enters through the Gateway.",
        no_exposed_services,
    ),
    Rule(
        "certificates-use-platform-issuer",
        "cert-manager Certificates use the platform issuer.",
        certificates_use_platform_issuer,
    ),
    Rule(
        "routes-attach-to-platform-https",
        "HTTPRoutes attach only to the platform Gateway's HTTPS listener "
        "(or their registry's ListenerSet); plain HTTP only redirects.",
        routes_attach_to_platform_https,
    ),
    Rule(
        "listenersets-extend-platform-https",
        "ListenerSets attach to the platform Gateway and only add HTTPS listeners that terminate TLS.",
        listenersets_extend_platform_https,
    ),
    Rule(
        "pods-are-restricted",
        "Containers run non-root, without privilege escalation, with CPU and memory limits.",
        pods_are_restricted,
    ),
    Rule("rbac-is-least", "No wildcard, escalate/bind/impersonate or built-in admin grants.", rbac_is_least),
    Rule(
        "pull-secrets-in-labelled-namespaces",
        "dockerconfigjson Secrets only in namespaces labelled berth.dev/pull-secrets=true.",
        pull_secrets_in_labelled_namespaces,
        stack=True,
    ),
    Rule(
        "namespaces-default-deny",
        "Every namespace created has a default-deny NetworkPolicy.",
        namespaces_default_deny,
        stack=True,
    ),
]


def violations(resources, config: PolicyConfig | None = None) -> list[str]:
    """Every rule over every resource: what the pack would report, as `rule: message` lines."""
    config = config or PolicyConfig()
    out = []
    for rule in RULES:
        if rule.stack:
            out += [f"{rule.name}: {m}" for m in rule.check(resources, config)]
        else:
            for resource_type, props in resources:
                out += [f"{rule.name}: {m}" for m in rule.check(resource_type, props, config)]
    return out
