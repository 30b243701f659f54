"""A registry's Kubernetes footprint as plain manifests: the one pure function of a `RegistrySpec`
that both provisioners use (the Pulumi program declares these objects; the local provisioner
writes them as YAML). Topology and reasons: docs/provisioning.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass

from app.lifecycle.provisioner import RegistrySpec
from app.services import docker_config

LABEL_PREFIX = "berth.dev/"
ORG_LABEL = LABEL_PREFIX + "org"
REGISTRY_LABEL = LABEL_PREFIX + "registry"
# Namespaces whose ListenerSets the platform Gateway accepts (its allowedListeners selector).
REGISTRY_NAMESPACE_LABEL = LABEL_PREFIX + "registry-namespace"
# Namespaces that may hold dockerconfigjson pull Secrets (the policy pack checks it).
PULL_SECRETS_LABEL = LABEL_PREFIX + "pull-secrets"
MANAGED_BY = {"app.kubernetes.io/managed-by": "berth"}
# A GitOps tool that applies the local provisioner's YAML must never delete a workload namespace
# it only labelled (Argo CD and Flux honour these).
NEVER_PRUNE = {
    "argocd.argoproj.io/sync-options": "Delete=false,Prune=false",
    "kustomize.toolkit.fluxcd.io/prune": "disabled",
}

GATEWAY_GROUP = "gateway.networking.k8s.io"
TLS_SECRET = "registry-tls"
LISTENER_SET = "registry"
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


@dataclass(frozen=True)
class PlatformRefs:
    """What a registry's footprint points at in the platform (the platform program's names)."""

    namespace: str = "berth"  # the service, its Gateway, and the ReferenceGrants to its Service
    service: str = "berth"
    service_port: int = 80
    gateway: str = "berth"
    https_listener: str = "https"
    issuer: str = "berth-issuer"
    issuer_kind: str = "ClusterIssuer"
    registry_header: str = "X-Berth-Registry"


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object of a footprint. `key` is stable and unique in the stack: the Pulumi
    resource name and the local file name. `patch` marks an object someone else owns, of which we
    only set the fields shown (server-side apply), e.g. the label on a workload namespace."""

    key: str
    body: dict
    patch: bool = False


def registry_namespace(registry: str) -> str:
    """The registry's own namespace: `registry-<name>`, shortened with a hash past 63 characters."""
    name = f"registry-{registry}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(registry.encode()).hexdigest()[:8]
    return f"registry-{registry[:44].rstrip('-')}-{digest}"


def pull_secret_name(registry: str) -> str:
    return f"berth-pull-{registry}"


def dockerconfigjson(server: str, username: str, token: str) -> str:
    return json.dumps(docker_config.dockerconfig([server], username, token), sort_keys=True, separators=(",", ":"))


def hostnames(spec: RegistrySpec) -> list[str]:
    return [spec.hostname] + ([spec.custom_domain] if spec.custom_domain else [])


def check_spec(spec: RegistrySpec) -> None:
    """Refuse a spec that would render invalid or unsafe objects (ValueError says which field)."""
    if not _DNS_LABEL.fullmatch(spec.name) or not _DNS_LABEL.fullmatch(spec.org):
        raise ValueError(f"org {spec.org!r} and registry {spec.name!r} must be DNS labels")
    for host in hostnames(spec):
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{host!r} is not a lowercase DNS hostname")
    for ns in spec.pull_namespaces:
        if not _DNS_LABEL.fullmatch(ns):
            raise ValueError(f"pull namespace {ns!r} is not a namespace name (a DNS label)")
    if not spec.pull_token:
        raise ValueError("the spec has no pull token: the pull Secret needs a pull-only access token")


def registry_outputs(spec: RegistrySpec, platform: PlatformRefs) -> dict[str, str]:
    """What provisioning a registry reports back (both provisioners, same keys)."""
    namespace = registry_namespace(spec.name)
    outputs = {
        "endpoint": spec.hostname,
        "namespace": namespace,
        "pull_secret": pull_secret_name(spec.name),
        "pull_secret_namespaces": ",".join([namespace, *_pull_namespaces(spec, namespace)]),
        "tls_secret": TLS_SECRET,
    }
    if spec.custom_domain:
        outputs["custom_domain"] = spec.custom_domain
    return outputs


def _pull_namespaces(spec: RegistrySpec, own: str) -> list[str]:
    return sorted({ns for ns in spec.pull_namespaces if ns != own})


def registry_resources(spec: RegistrySpec, platform: PlatformRefs) -> list[Manifest]:
    """The registry's footprint, in apply order (its namespace first)."""
    check_spec(spec)
    ns = registry_namespace(spec.name)
    labels = {**MANAGED_BY, ORG_LABEL: spec.org, REGISTRY_LABEL: spec.name}

    def meta(name: str, namespace: str | None = ns, **extra) -> dict:
        out = {"name": name, "labels": dict(labels), **extra}
        if namespace:
            out["namespace"] = namespace
        return out

    hosts = hostnames(spec)
    listener_names = ["https"] + (["https-custom"] if spec.custom_domain else [])
    out = [
        Manifest(
            "namespace",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {**labels, REGISTRY_NAMESPACE_LABEL: "true", PULL_SECRETS_LABEL: "true"},
                },
            },
        ),
        Manifest(
            "networkpolicy-default-deny",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta("default-deny"),
                # Nothing runs here today; anything placed here later starts isolated.
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
        ),
        Manifest(
            "certificate",
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": meta("registry"),
                "spec": {
                    "secretName": TLS_SECRET,
                    "dnsNames": hosts,
                    "issuerRef": {"group": "cert-manager.io", "kind": platform.issuer_kind, "name": platform.issuer},
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "secretTemplate": {"labels": dict(labels)},
                },
            },
        ),
        Manifest(
            "listenerset",
            {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "ListenerSet",
                "metadata": meta(LISTENER_SET),
                "spec": {
                    "parentRef": {
                        "group": GATEWAY_GROUP,
                        "kind": "Gateway",
                        "name": platform.gateway,
                        "namespace": platform.namespace,
                    },
                    "listeners": [
                        {
                            "name": listener,
                            "hostname": host,
                            "port": 443,
                            "protocol": "HTTPS",
                            "tls": {
                                "mode": "Terminate",
                                "certificateRefs": [{"group": "", "kind": "Secret", "name": TLS_SECRET}],
                            },
                            "allowedRoutes": {
                                "namespaces": {"from": "Same"},
                                "kinds": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute"}],
                            },
                        }
                        for listener, host in zip(listener_names, hosts, strict=False)
                    ],
                },
            },
        ),
        Manifest(
            "httproute",
            {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "HTTPRoute",
                "metadata": meta("registry"),
                "spec": {
                    "parentRefs": [
                        {"group": GATEWAY_GROUP, "kind": "ListenerSet", "name": LISTENER_SET, "sectionName": listener}
                        for listener in listener_names
                    ],
                    "hostnames": hosts,
                    "rules": [
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            # `set`, not `add`: a client cannot choose the registry by sending the header.
                            "filters": [
                                {
                                    "type": "RequestHeaderModifier",
                                    "requestHeaderModifier": {
                                        "set": [{"name": platform.registry_header, "value": spec.name}]
                                    },
                                }
                            ],
                            "backendRefs": [
                                {
                                    "group": "",
                                    "kind": "Service",
                                    "name": platform.service,
                                    "namespace": platform.namespace,
                                    "port": platform.service_port,
                                }
                            ],
                            # Layer uploads take as long as they take; Berth bounds request bodies itself.
                            "timeouts": {"request": "0s"},
                        }
                    ],
                },
            },
        ),
        Manifest(
            "referencegrant",
            {
                # Lives in the platform namespace: a cross-namespace backendRef is allowed only by
                # the namespace that owns the target.
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "ReferenceGrant",
                "metadata": meta(ns, namespace=platform.namespace),
                "spec": {
                    "from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": ns}],
                    "to": [{"group": "", "kind": "Service", "name": platform.service}],
                },
            },
        ),
    ]
    secret_data = {
        ".dockerconfigjson": base64.b64encode(
            dockerconfigjson(spec.server or spec.hostname, spec.pull_username, spec.pull_token).encode()
        ).decode()
    }
    secret_name = pull_secret_name(spec.name)
    out.append(
        Manifest(
            f"pull-secret.{ns}",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/dockerconfigjson",
                "metadata": meta(secret_name),
                "data": secret_data,
            },
        )
    )
    for workload_ns in _pull_namespaces(spec, ns):
        out.append(
            Manifest(
                f"pull-namespace.{workload_ns}",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": workload_ns,
                        "labels": {PULL_SECRETS_LABEL: "true"},
                        "annotations": dict(NEVER_PRUNE),
                    },
                },
                patch=True,
            )
        )
        out.append(
            Manifest(
                f"pull-secret.{workload_ns}",
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/dockerconfigjson",
                    "metadata": meta(secret_name, namespace=workload_ns),
                    "data": dict(secret_data),
                },
            )
        )
    return out
