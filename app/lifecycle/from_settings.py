"""Which provisioner this deployment uses (`BERTH_PROVISIONER`): local (the default), pulumi, none."""

from __future__ import annotations

from app.config import Settings
from app.lifecycle.provisioner import NoProvisioner, Provisioner
from app.lifecycle.resources import PlatformRefs


def platform_refs(settings: Settings) -> PlatformRefs:
    return PlatformRefs(
        namespace=settings.platform_namespace,
        service=settings.platform_service,
        service_port=settings.platform_service_port,
        gateway=settings.platform_gateway,
        https_listener=settings.platform_gateway_listener,
        issuer=settings.cert_issuer,
        issuer_kind=settings.cert_issuer_kind,
    )


def open_provisioner(settings: Settings) -> Provisioner:
    """The configured provisioner. Call its `check()` at start: it raises ProvisionError saying
    what to do when it cannot run here (e.g. no pulumi CLI)."""
    if settings.provisioner == "none":
        return NoProvisioner()
    if settings.provisioner == "pulumi":
        from app.lifecycle.pulumi_provisioner import PulumiProvisioner

        return PulumiProvisioner(
            settings.pulumi_backend_url,
            platform_refs(settings),
            work_dir=settings.data_dir / "pulumi-work",
            pulumi_root=settings.pulumi_root,
            secrets_provider=settings.pulumi_secrets_provider,
            timeout_seconds=settings.pulumi_timeout,
            policy_pack=settings.pulumi_policy_pack,
        )
    if settings.provisioner == "local":
        from app.lifecycle.local import LocalProvisioner

        return LocalProvisioner(settings.data_dir, platform_refs(settings))
    raise ValueError(f"unknown provisioner {settings.provisioner!r}: use local, pulumi or none")
