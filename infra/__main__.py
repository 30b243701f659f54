"""The Berth platform program, run by `pulumi up` from the repository root (Pulumi.yaml).

Reads the stack's config (`berth:*`, see Pulumi.example.yaml) into a PlatformConfig and declares
infra/platform_resources.py's manifests. Needs the `berth` package importable (Pulumi.yaml points
the runtime at the repository's .venv, where `pip install -e .` put it). `berth:image` names
the image by digest (`scripts/image --push REPO` prints it). Not run in CI (no cluster there):
tests/infra runs it under Pulumi's mocks; scripts/e2e-cluster runs it for real.
"""

from __future__ import annotations

import os
import sys

import pulumi

# `infra/` is on sys.path when Pulumi runs this directory; the repository root holds `app`.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from app.lifecycle.pulumi_program import declare_all  # noqa: E402
from app.lifecycle.resources import PlatformRefs  # noqa: E402
from infra.platform_resources import PlatformConfig, platform_resources  # noqa: E402


def load_config() -> PlatformConfig:
    cfg = pulumi.Config("berth")
    defaults = PlatformConfig.__dataclass_fields__
    refs = PlatformRefs(
        namespace=cfg.get("namespace") or PlatformRefs.namespace,
        gateway=cfg.get("gatewayName") or PlatformRefs.gateway,
        issuer=cfg.get("issuer") or PlatformRefs.issuer,
        issuer_kind=cfg.get("issuerKind") or PlatformRefs.issuer_kind,
    )

    def number(key: str, name: str) -> int:
        value = cfg.get_int(key)
        return defaults[name].default if value is None else value

    def text(key: str, name: str) -> str:
        return cfg.get(key) or defaults[name].default

    return PlatformConfig(
        image=cfg.require("image"),
        domain=cfg.require("domain"),
        gateway_class=cfg.require("gatewayClass"),
        storage_url=cfg.require("storageUrl"),
        trusted_proxies=cfg.require("trustedProxies"),
        database_url=cfg.require_secret("databaseUrl"),
        token_signing_key=cfg.require_secret("tokenSigningKey"),
        pulumi_passphrase=cfg.get_secret("pulumiPassphrase"),
        redis_url=cfg.get_secret("redisUrl"),
        refs=refs,
        replicas=number("replicas", "replicas"),
        min_replicas=number("minReplicas", "min_replicas"),
        max_replicas=number("maxReplicas", "max_replicas"),
        target_cpu_percent=number("targetCpuPercent", "target_cpu_percent"),
        cpu_request=text("cpuRequest", "cpu_request"),
        memory_request=text("memoryRequest", "memory_request"),
        cpu_limit=text("cpuLimit", "cpu_limit"),
        memory_limit=text("memoryLimit", "memory_limit"),
        oidc_jwks_url=text("oidcJwksUrl", "oidc_jwks_url"),
        oidc_issuer=text("oidcIssuer", "oidc_issuer"),
        oidc_audience=text("oidcAudience", "oidc_audience"),
        pulumi_backend_url=text("pulumiBackendUrl", "pulumi_backend_url"),
        pulumi_secrets_provider=text("pulumiSecretsProvider", "pulumi_secrets_provider"),
        service_account_annotations=cfg.get_object("serviceAccountAnnotations") or {},
        gateway_pod_namespace=text("gatewayPodNamespace", "gateway_pod_namespace"),
        gateway_pod_labels=cfg.get_object("gatewayPodLabels") or {},
        egress_ports=tuple(cfg.get_object("egressPorts") or defaults["egress_ports"].default),
        egress_cidrs=tuple(cfg.get_object("egressCidrs") or defaults["egress_cidrs"].default),
        extra_settings=cfg.get_object("settings") or {},
        metrics_port=number("metricsPort", "metrics_port"),
        monitoring_namespace=text("monitoringNamespace", "monitoring_namespace"),
    )


config = load_config()
resources = declare_all(platform_resources(config))
pulumi.export("namespace", config.refs.namespace)
pulumi.export("gateway", f"{config.refs.namespace}/{config.refs.gateway}")
pulumi.export("endpoint", f"https://{config.domain}")
