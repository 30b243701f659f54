"""The platform's Kubernetes objects as plain manifests: one pure function of `PlatformConfig`.

`infra/__main__.py` reads the stack's config into a PlatformConfig and declares these with
`app.lifecycle.pulumi_program.declare_all`. Secret values (database URL, signing key, ...) may be
Pulumi Outputs: they are only placed, never read, so they stay secret. Topology and reasons:
docs/provisioning.md; the operator's path (image, prerequisites, `pulumi up`): docs/operations.md.

Pulumi cannot run against a cluster on the development machines: these objects are checked under
Pulumi's mocks and against the CRD schemas in tests/infra, and the Deployment against the built
image in tests/integration/test_image.py. scripts/e2e-cluster runs them on a real cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.lifecycle.resources import (
    GATEWAY_GROUP,
    MANAGED_BY,
    PULL_SECRETS_LABEL,
    REGISTRY_NAMESPACE_LABEL,
    Manifest,
    PlatformRefs,
)

APP_LABELS = {"app.kubernetes.io/name": "berth", "app.kubernetes.io/component": "server"}
PORT = 5000
METRICS_PATH = "/metrics"
DATA_DIR = "/var/lib/berth"
TOKEN_KEYS_DIR = "/etc/berth/token-keys"
UID = 10001  # the Dockerfile's user; DATA_DIR is its volume, PORT its BERTH_PORT
IMAGE_BY_DIGEST = re.compile(r"[^\s@]+@sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class PlatformConfig:
    """The platform stack's settings (Pulumi config `berth:<camelCase name>`; see Pulumi.example.yaml)."""

    image: str
    domain: str
    gateway_class: str
    storage_url: str  # gs://bucket[/prefix]
    trusted_proxies: str  # CIDRs of the gateway's data-plane pods
    # Secrets: plain strings in tests, Pulumi secret Outputs in the real program.
    database_url: Any
    token_signing_key: Any  # PEM of an EC P-256 private key
    pulumi_passphrase: Any = None  # for the registry stacks' passphrase secrets provider
    redis_url: Any = None
    refs: PlatformRefs = field(default_factory=PlatformRefs)
    replicas: int = 2
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu_percent: int = 70
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    oidc_jwks_url: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    pulumi_backend_url: str = ""  # default: gs://<bucket of storage_url>/pulumi-state
    pulumi_secrets_provider: str = ""
    service_account_annotations: dict = field(default_factory=dict)  # e.g. GKE workload identity
    # Where the Gateway implementation runs its proxies (ingress to Berth is allowed from there).
    gateway_pod_namespace: str = "gateway-system"
    gateway_pod_labels: dict = field(default_factory=dict)
    # Egress Berth needs besides DNS: the database, Redis, GCS, the IdP and the Kubernetes API.
    egress_ports: tuple[int, ...] = (443, 5432, 6379, 6443)
    egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    extra_settings: dict = field(default_factory=dict)  # more BERTH_* variables, verbatim
    # Prometheus scrapes each pod on this container port (named `metrics`, BERTH_METRICS_ADDR),
    # from this namespace only; no Service exposes it, so no registry hostname reaches it.
    metrics_port: int = 9090
    monitoring_namespace: str = "monitoring"

    @property
    def backend_url(self) -> str:
        if self.pulumi_backend_url:
            return self.pulumi_backend_url
        bucket = self.storage_url.split("://", 1)[-1].split("/", 1)[0]
        return f"gs://{bucket}/pulumi-state"


def settings_env(config: PlatformConfig) -> dict[str, str]:
    """The non-secret BERTH_* settings of the Deployment (a ConfigMap)."""
    refs = config.refs
    env = {
        "BERTH_HOST": "0.0.0.0",
        "BERTH_PORT": str(PORT),
        # The series name every tenant: served off the public port, on the pod's `metrics` port.
        "BERTH_METRICS_ADDR": f"0.0.0.0:{config.metrics_port}",
        "BERTH_DATA_DIR": DATA_DIR,
        "BERTH_TOKEN_KEYS_DIR": TOKEN_KEYS_DIR,
        "BERTH_STORAGE_URL": config.storage_url,
        "BERTH_STORAGE_REDIRECT": "true",
        "BERTH_DOMAIN": config.domain,
        "BERTH_TRUSTED_PROXIES": config.trusted_proxies,
        "BERTH_REQUIRE_HTTPS": "true",
        "BERTH_LOG_FORMAT": "json",
        "BERTH_PROVISIONER": "pulumi",
        "BERTH_PULUMI_BACKEND_URL": config.backend_url,
        "BERTH_PLATFORM_NAMESPACE": refs.namespace,
        "BERTH_PLATFORM_SERVICE": refs.service,
        "BERTH_PLATFORM_SERVICE_PORT": str(refs.service_port),
        "BERTH_PLATFORM_GATEWAY": refs.gateway,
        "BERTH_PLATFORM_GATEWAY_LISTENER": refs.https_listener,
        "BERTH_CERT_ISSUER": refs.issuer,
        "BERTH_CERT_ISSUER_KIND": refs.issuer_kind,
        # The Pulumi CLI keeps plugins and workspaces here; the root filesystem is read-only.
        "PULUMI_HOME": f"{DATA_DIR}/pulumi-home",
        "HOME": "/tmp",
    }
    if config.pulumi_secrets_provider:
        env["BERTH_PULUMI_SECRETS_PROVIDER"] = config.pulumi_secrets_provider
    if config.oidc_jwks_url:
        env.update(
            BERTH_OIDC_JWKS_URL=config.oidc_jwks_url,
            BERTH_OIDC_ISSUER=config.oidc_issuer,
            BERTH_OIDC_AUDIENCE=config.oidc_audience,
        )
    env.update({k: str(v) for k, v in config.extra_settings.items()})
    return env


def platform_resources(config: PlatformConfig) -> list[Manifest]:
    """Namespace, RBAC, settings and secrets, the Deployment and its Service, TLS and the Gateway,
    availability (PDB, HPA) and network policies, in apply order."""
    refs = config.refs
    ns = refs.namespace
    labels = {**MANAGED_BY, **APP_LABELS}
    if config.metrics_port == PORT:
        raise ValueError(f"metricsPort must differ from the service port {PORT}: the metrics are not for tenants")
    if not IMAGE_BY_DIGEST.fullmatch(config.image):
        raise ValueError(
            f"image {config.image!r} must be named by digest (registry/berth@sha256:<64 hex>, as "
            "`scripts/image --push REPO` prints it): a tag may move, and replicas would differ"
        )

    def meta(name: str, namespace: str | None = ns) -> dict:
        out = {"name": name, "labels": dict(labels)}
        if namespace:
            out["namespace"] = namespace
        return out

    env = settings_env(config)
    secret_env = {"BERTH_DATABASE_URL": config.database_url}
    if config.redis_url is not None:
        secret_env["BERTH_REDIS_URL"] = config.redis_url
    if config.pulumi_passphrase is not None:
        secret_env["PULUMI_CONFIG_PASSPHRASE"] = config.pulumi_passphrase
    # Pods restart when the settings change (secrets rotate with a rollout restart).
    settings_hash = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]
    gateway_ref = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": refs.gateway, "namespace": ns}
    crud = ["get", "list", "watch", "create", "update", "patch", "delete"]

    out = [
        Manifest(
            "namespace",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {
                        **labels,
                        PULL_SECRETS_LABEL: "false",
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            },
        ),
        Manifest(
            "serviceaccount",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {**meta("berth"), "annotations": dict(config.service_account_annotations)},
                # The Pulumi provisioner talks to the API server as this account.
                "automountServiceAccountToken": True,
            },
        ),
        # What running a registry stack needs, nothing more: namespaces come and go, so these are
        # cluster-wide; Secrets without list/watch (Pulumi gets each by name).
        Manifest(
            "clusterrole",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": meta("berth-provisioner", namespace=None),
                "rules": [
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": crud},
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "verbs": ["get", "create", "update", "patch", "delete"],
                    },
                    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": crud},
                    {"apiGroups": ["cert-manager.io"], "resources": ["certificates"], "verbs": crud},
                    {"apiGroups": [GATEWAY_GROUP], "resources": ["httproutes", "listenersets"], "verbs": crud},
                ],
            },
        ),
        Manifest(
            "clusterrolebinding",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": meta("berth-provisioner", namespace=None),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "berth-provisioner",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "berth", "namespace": ns}],
            },
        ),
        # ReferenceGrants (route -> Service) live beside the Service: only here.
        Manifest(
            "role",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta("berth-provisioner"),
                "rules": [{"apiGroups": [GATEWAY_GROUP], "resources": ["referencegrants"], "verbs": crud}],
            },
        ),
        Manifest(
            "rolebinding",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta("berth-provisioner"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "berth-provisioner"},
                "subjects": [{"kind": "ServiceAccount", "name": "berth", "namespace": ns}],
            },
        ),
        Manifest(
            "configmap",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta("berth-settings"),
                "data": env,
            },
        ),
        Manifest(
            "secret-settings",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": meta("berth-secrets"),
                "stringData": secret_env,
            },
        ),
        Manifest(
            "secret-token-keys",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": meta("berth-token-keys"),
                "stringData": {"signing.pem": config.token_signing_key},
            },
        ),
        Manifest("deployment", _deployment(config, meta("berth"), settings_hash)),
        Manifest(
            "service",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(refs.service),
                "spec": {
                    "type": "ClusterIP",
                    "selector": dict(APP_LABELS),
                    "ports": [{"name": "http", "port": refs.service_port, "targetPort": "http", "protocol": "TCP"}],
                },
            },
        ),
        Manifest(
            "poddisruptionbudget",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta("berth"),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(APP_LABELS)}},
            },
        ),
        Manifest(
            "horizontalpodautoscaler",
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta("berth"),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "berth"},
                    "minReplicas": config.min_replicas,
                    "maxReplicas": config.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": config.target_cpu_percent},
                            },
                        }
                    ],
                },
            },
        ),
        Manifest(
            "certificate",
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": meta("berth"),
                "spec": {
                    "secretName": "berth-tls",
                    "dnsNames": [config.domain],
                    "issuerRef": {"group": "cert-manager.io", "kind": refs.issuer_kind, "name": refs.issuer},
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                },
            },
        ),
        Manifest(
            "gateway",
            {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "Gateway",
                "metadata": meta(refs.gateway),
                "spec": {
                    "gatewayClassName": config.gateway_class,
                    "listeners": [
                        {
                            "name": "http",
                            "port": 80,
                            "protocol": "HTTP",
                            "allowedRoutes": {"namespaces": {"from": "Same"}},
                        },
                        {
                            "name": refs.https_listener,
                            "port": 443,
                            "protocol": "HTTPS",
                            "hostname": config.domain,
                            "tls": {
                                "mode": "Terminate",
                                "certificateRefs": [{"group": "", "kind": "Secret", "name": "berth-tls"}],
                            },
                            "allowedRoutes": {"namespaces": {"from": "Same"}},
                        },
                    ],
                    # Each registry brings its hostname's HTTPS listener and certificate as a
                    # ListenerSet in its own namespace; only those namespaces may attach.
                    "allowedListeners": {
                        "namespaces": {
                            "from": "Selector",
                            "selector": {"matchLabels": {REGISTRY_NAMESPACE_LABEL: "true"}},
                        }
                    },
                },
            },
        ),
        Manifest(
            "httproute-redirect",
            {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "HTTPRoute",
                "metadata": meta("berth-https-redirect"),
                "spec": {
                    # No hostnames: every name on port 80, registries' included, goes to HTTPS.
                    "parentRefs": [{**gateway_ref, "sectionName": "http"}],
                    "rules": [
                        {
                            "filters": [
                                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
                            ]
                        }
                    ],
                },
            },
        ),
        Manifest(
            "httproute",
            {
                "apiVersion": f"{GATEWAY_GROUP}/v1",
                "kind": "HTTPRoute",
                "metadata": meta("berth"),
                "spec": {
                    # The shared endpoint: the management API, the token service, path-form pulls.
                    "parentRefs": [{**gateway_ref, "sectionName": refs.https_listener}],
                    "hostnames": [config.domain],
                    "rules": [
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            # Requests on the shared endpoint name no registry: the header is removed, so
                            # no client can choose one by sending it.
                            "filters": [
                                {
                                    "type": "RequestHeaderModifier",
                                    "requestHeaderModifier": {"remove": [refs.registry_header]},
                                }
                            ],
                            "backendRefs": [
                                {"group": "", "kind": "Service", "name": refs.service, "port": refs.service_port}
                            ],
                            "timeouts": {"request": "0s"},
                        }
                    ],
                },
            },
        ),
    ]
    out += _network_policies(config, meta)
    return out


def _deployment(config: PlatformConfig, metadata: dict, settings_hash: str) -> dict:
    probe = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": config.replicas,
            "selector": {"matchLabels": dict(APP_LABELS)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": {**MANAGED_BY, **APP_LABELS},
                    "annotations": {
                        "berth.dev/settings-hash": settings_hash,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(config.metrics_port),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    "serviceAccountName": "berth",
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "fsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(APP_LABELS)},
                        }
                    ],
                    "containers": [
                        {
                            "name": "berth",
                            "image": config.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["berth", "serve"],
                            "ports": [
                                {"name": "http", "containerPort": PORT, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": config.metrics_port, "protocol": "TCP"},
                            ],
                            "envFrom": [
                                {"configMapRef": {"name": "berth-settings"}},
                                {"secretRef": {"name": "berth-secrets"}},
                            ],
                            "livenessProbe": probe,
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 5,
                            },
                            "startupProbe": {**probe, "failureThreshold": 30, "periodSeconds": 2},
                            "resources": {
                                "requests": {"cpu": config.cpu_request, "memory": config.memory_request},
                                "limits": {"cpu": config.cpu_limit, "memory": config.memory_limit},
                            },
                            "securityContext": {
                                "runAsNonRoot": True,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": DATA_DIR},
                                {"name": "tmp", "mountPath": "/tmp"},
                                {"name": "token-keys", "mountPath": TOKEN_KEYS_DIR, "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        # Request-body spool, Pulumi workspaces and plugins: scratch space only.
                        {"name": "data", "emptyDir": {"sizeLimit": "20Gi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "token-keys", "secret": {"secretName": "berth-token-keys", "defaultMode": 0o440}},
                    ],
                },
            },
        },
    }


def _network_policies(config: PlatformConfig, meta) -> list[Manifest]:
    """Default deny in the platform namespace; Berth's pods take traffic only from the gateway's
    proxies (on the service port) and the monitoring namespace (on the metrics port), and reach
    only DNS and the ports of what they use."""
    proxies_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.gateway_pod_namespace}}}
    if config.gateway_pod_labels:
        proxies_peer["podSelector"] = {"matchLabels": dict(config.gateway_pod_labels)}
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    out = [
        Manifest(
            "networkpolicy-default-deny",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta("default-deny"),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
        ),
        Manifest(
            "networkpolicy-berth",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta("berth"),
                "spec": {
                    "podSelector": {"matchLabels": dict(APP_LABELS)},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {"from": [proxies_peer], "ports": [{"protocol": "TCP", "port": PORT}]},
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": config.monitoring_namespace}
                                    }
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": config.metrics_port}],
                        },
                    ],
                    "egress": [
                        dns,
                        {
                            "to": [{"ipBlock": {"cidr": cidr}} for cidr in config.egress_cidrs],
                            "ports": [{"protocol": "TCP", "port": port} for port in config.egress_ports],
                        },
                    ],
                },
            },
        ),
    ]
    if config.gateway_pod_namespace == config.refs.namespace:
        if not config.gateway_pod_labels:
            raise ValueError(
                "gatewayPodLabels must select the gateway's proxies when they run in the "
                "platform namespace (an empty selector would open every pod to the world)"
            )
        # The gateway's proxies run here too (some implementations put them beside the Gateway):
        # they take traffic from anywhere and reach Berth.
        selector = {"matchLabels": dict(config.gateway_pod_labels)}
        out.append(
            Manifest(
                "networkpolicy-gateway",
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": meta("gateway-proxies"),
                    "spec": {
                        "podSelector": selector,
                        "policyTypes": ["Ingress", "Egress"],
                        "ingress": [{}],
                        "egress": [
                            dns,
                            {
                                "to": [{"podSelector": {"matchLabels": dict(APP_LABELS)}}],
                                "ports": [{"protocol": "TCP", "port": PORT}],
                            },
                        ],
                    },
                },
            )
        )
    return out
