"""Run the Pulumi programs under Pulumi's mocks and get back every resource they register, as
the Kubernetes manifest it would apply.

No Pulumi engine, CLI or cluster can run here (see ARCHITECTURE.md): `pulumi.runtime.set_mocks`
stands in for the engine, so each program runs for real (config, secrets, resource
registration) while nothing leaves the process.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pulumi

from app.lifecycle.provisioner import RegistrySpec
from app.lifecycle.pulumi_program import registry_program
from app.lifecycle.resources import PlatformRefs

ROOT = Path(__file__).resolve().parents[2]
# How the mocks hand a secret input back: {SIG: SECRET_SIG, "value": ...}.
_SIG, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"

# A platform stack's config as `pulumi config set` would leave it (secrets marked secret).
PLATFORM_CONFIG = {
    "berth:image": "ghcr.io/example/berth@sha256:" + "5" * 64,
    "berth:domain": "cr.example.test",
    "berth:gatewayClass": "eg",
    "berth:storageUrl": "gs://berth-test-blobs",
    "berth:trustedProxies": "10.8.0.0/14",
    "berth:databaseUrl": "postgresql://berth:db-secret@10.20.0.5:5432/berth",
    "berth:tokenSigningKey": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n",
    "berth:pulumiPassphrase": "stack-passphrase",
    "berth:redisUrl": "redis://10.20.0.7:6379/0",
    "berth:oidcJwksUrl": "https://idp.example.test/jwks.json",
    "berth:oidcIssuer": "https://idp.example.test/",
    "berth:oidcAudience": "berth",
    "berth:gatewayPodLabels": json.dumps({"gateway.envoyproxy.io/owning-gateway-name": "berth"}),
    "berth:gatewayPodNamespace": "envoy-gateway-system",
    "berth:settings": json.dumps({"BERTH_RATE_LIMIT": "2000/10 minutes"}),
    "berth:metricsPort": "9464",
    "berth:monitoringNamespace": "observability",
}
PLATFORM_SECRETS = ["berth:databaseUrl", "berth:tokenSigningKey", "berth:pulumiPassphrase", "berth:redisUrl"]


@dataclass
class Registered:
    type: str  # the Pulumi type token, e.g. kubernetes:core/v1:Namespace
    name: str  # the Pulumi resource name (the manifest's key)
    manifest: dict  # what the provider would send to the API server
    secret_paths: list  # which inputs were marked secret


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        secret_paths: list = []
        manifest = plain(args.inputs, secret_paths)
        self.registered.append(Registered(args.typ, args.name, manifest, secret_paths))
        return [f"{args.name}-id", args.inputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def plain(value, secret_paths: list | None = None, path: str = ""):
    """Inputs as the mocks see them, made plain: secrets unwrapped (and noted), whole floats as
    ints (the mocks hand numbers back as floats)."""
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET_SIG:
            if secret_paths is not None:
                secret_paths.append(path)
            return plain(value.get("value"), secret_paths, path)
        return {k: plain(v, secret_paths, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run_under_mocks(
    program: Callable[[], list], config: dict | None = None, secret_keys: list | None = None, stack: str = "test"
) -> list[Registered]:
    """Run `program` (which returns the resources it declared) under fresh mocks; wait for every
    resource's URN, so everything it registered has reached the mocks."""
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="berth", stack=stack, preview=False)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys or []))

    @pulumi.runtime.test
    def run():
        resources = program()
        return pulumi.Output.all(*[r.urn for r in resources])

    run()
    return recorder.registered


def run_registry_program(
    spec: RegistrySpec, platform: PlatformRefs | None = None, timeout_seconds: int | None = 600
) -> tuple[list[Registered], dict]:
    """The per-registry inline program, as the Pulumi provisioner runs it; and what it exports."""
    exported: dict = {}
    declared: list = []
    real_export = pulumi.export
    from app.lifecycle import pulumi_program

    real_declare_all = pulumi_program.declare_all

    def capture_declare_all(manifests, opts=None):
        resources = real_declare_all(manifests, opts)
        declared.extend(resources.values())
        return resources

    def program():
        pulumi.export = lambda name, value: exported.__setitem__(name, value)
        pulumi_program.declare_all = capture_declare_all
        try:
            registry_program(spec, platform or PlatformRefs(), timeout_seconds)()
        finally:
            pulumi.export = real_export
            pulumi_program.declare_all = real_declare_all
        return declared

    return run_under_mocks(program, {}, [], stack=f"{spec.org}.{spec.name}"), exported


def run_platform_program(config: dict | None = None, secret_keys: list | None = None) -> list[Registered]:
    """infra/__main__.py, as `pulumi up` runs it, with the given stack config."""

    def program():
        namespace = runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
        return list(namespace["resources"].values())

    return run_under_mocks(
        program,
        PLATFORM_CONFIG if config is None else config,
        PLATFORM_SECRETS if secret_keys is None else secret_keys,
        stack="prod",
    )
