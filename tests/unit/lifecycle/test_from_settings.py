"""Which provisioner a deployment runs, from its settings; the platform names it points at."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.lifecycle.from_settings import open_provisioner, platform_refs
from app.lifecycle.local import LocalProvisioner
from app.lifecycle.provisioner import NoProvisioner, RegistrySpec


def test_the_configured_provisioner(tmp_path):
    settings = Settings.load(data_dir=tmp_path, provisioner="local")
    local = open_provisioner(settings)
    assert isinstance(local, LocalProvisioner) and local.root == tmp_path / "manifests"
    settings.provisioner = "none"
    assert isinstance(open_provisioner(settings), NoProvisioner)
    settings.provisioner = "terraform"
    with pytest.raises(ValueError, match="use local, pulumi or none"):
        open_provisioner(settings)


def test_the_platform_names_come_from_settings(tmp_path):
    settings = Settings.load(data_dir=tmp_path)
    settings.platform_namespace, settings.cert_issuer_kind = "infra", "Issuer"
    refs = platform_refs(settings)
    assert refs.namespace == "infra" and refs.issuer_kind == "Issuer" and refs.service == settings.platform_service


def test_with_provisioning_off_nothing_is_made():
    lines = []
    spec = RegistrySpec(org="o", name="r", hostname="r.example")
    assert NoProvisioner().provision(spec, lines.append) == {"endpoint": "r.example"}
    NoProvisioner().destroy(spec, lines.append)
    assert len(lines) == 2 and all("provisioning is off" in line for line in lines)
