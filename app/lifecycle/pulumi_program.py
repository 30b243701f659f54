"""Manifests declared as Pulumi Kubernetes resources, and the per-registry Pulumi program.

The program is inline: the Pulumi provisioner hands `registry_program(spec, platform)` to the
Automation API, one stack per registry. The platform program (infra/__main__.py) declares its
manifests with the same `declare`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pulumi
import pulumi_kubernetes as k8s

from app.lifecycle.provisioner import RegistrySpec
from app.lifecycle.resources import Manifest, PlatformRefs, registry_outputs, registry_resources

# Kinds with typed pulumi-kubernetes classes; everything else (Gateway API, cert-manager) is a
# CustomResource.
_TYPED = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
}
_PATCHES = {
    ("v1", "Namespace"): k8s.core.v1.NamespacePatch,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def declare(manifest: Manifest, opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
    """One Pulumi resource for one manifest, named by the manifest's key. Secret data is marked
    secret, so it is encrypted in the stack's state."""
    body = manifest.body
    group_kind = (body["apiVersion"], body["kind"])
    fields = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    for key in ("data", "stringData"):
        if body["kind"] == "Secret" and key in fields:
            fields[key] = pulumi.Output.secret(fields[key])
    cls = (_PATCHES if manifest.patch else _TYPED).get(group_kind)
    if cls is not None:
        return cls(manifest.key, **{_snake(k): v for k, v in fields.items()}, opts=opts)
    if manifest.patch:
        raise ValueError(f"no patch resource for {group_kind}")
    spec = fields.pop("spec", None)
    return k8s.apiextensions.CustomResource(
        manifest.key,
        api_version=body["apiVersion"],
        kind=body["kind"],
        spec=spec,
        opts=opts,
        **fields,
    )


def declare_all(
    manifests: Iterable[Manifest], opts: pulumi.ResourceOptions | None = None
) -> dict[str, pulumi.CustomResource]:
    """Declare manifests in order. Objects in a namespace declared here depend on it, so a
    destroy removes them before their namespace (and the namespace's deletion does not race them)."""
    opts = opts or pulumi.ResourceOptions()
    resources: dict[str, pulumi.CustomResource] = {}
    namespaces: dict[str, pulumi.CustomResource] = {}
    for manifest in manifests:
        depends = []
        namespace = manifest.body.get("metadata", {}).get("namespace")
        if namespace in namespaces:
            depends.append(namespaces[namespace])
        if manifest.body["kind"] == "Secret" and namespace not in namespaces:
            # A pull Secret in a workload namespace waits for that namespace's label.
            patch = resources.get(f"pull-namespace.{namespace}")
            if patch is not None:
                depends.append(patch)
        resource = declare(manifest, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends)))
        resources[manifest.key] = resource
        if manifest.body["kind"] == "Namespace" and not manifest.patch:
            namespaces[manifest.body["metadata"]["name"]] = resource
    return resources


def registry_program(
    spec: RegistrySpec, platform: PlatformRefs, timeout_seconds: int | None = None
) -> Callable[[], None]:
    """The inline program of one registry's stack: its footprint, and its outputs exported.
    `timeout_seconds` bounds each resource's create, update and delete."""

    def program() -> None:
        opts = None
        if timeout_seconds:
            limit = f"{int(timeout_seconds)}s"
            opts = pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(create=limit, update=limit, delete=limit)
            )
        declare_all(registry_resources(spec, platform), opts)
        for name, value in registry_outputs(spec, platform).items():
            pulumi.export(name, value)

    return program
