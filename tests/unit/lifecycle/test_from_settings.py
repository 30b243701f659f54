"""Which provisioner a deployment runs, from its settings; the platform names it points at."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.lifecycle.from_settings import open_provisioner, platform_refs
from app.lifecycle.local import LocalProvisioner
from app.lifecycle.provisioner import NoProvisioner
from app.lifecycle.pulumi_provisioner import PulumiProvisioner


def test_open_provisioner_follows_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("BERTH_PROVISIONER", raising=False)
    settings = Settings.load(data_dir=tmp_path)
    assert settings.provisioner == "local"
    local = open_provisioner(settings)
    assert isinstance(local, LocalProvisioner) and local.root == tmp_path / "manifests"
    assert isinstance(open_provisioner(Settings.load(data_dir=tmp_path, provisioner="none")), NoProvisioner)

    monkeypatch.setenv("BERTH_PROVISIONER", "pulumi")
    monkeypatch.setenv("BERTH_PLATFORM_NAMESPACE", "berth-system")
    monkeypatch.setenv("BERTH_CERT_ISSUER", "corp-ca")
    pulumi = open_provisioner(Settings.load(data_dir=tmp_path))
    assert isinstance(pulumi, PulumiProvisioner)
    assert pulumi.backend_url == f"file://{(tmp_path / 'pulumi-state').resolve()}"
    assert pulumi.platform.namespace == "berth-system" and pulumi.platform.issuer == "corp-ca"
    assert pulumi.timeout_seconds == 900 and pulumi.policy_pack == ""

    monkeypatch.setenv("BERTH_PROVISIONER", "terraform")
    with pytest.raises(SystemExit, match="local, pulumi or none"):
        Settings.load(data_dir=tmp_path)


def test_the_platform_names_come_from_settings(tmp_path):
    settings = Settings.load(data_dir=tmp_path)
    settings.platform_namespace, settings.cert_issuer_kind = "infra", "Issuer"
    refs = platform_refs(settings)
    assert refs.namespace == "infra" and refs.issuer_kind == "Issuer" and refs.service == settings.platform_service
