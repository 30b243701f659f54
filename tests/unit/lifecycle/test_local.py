"""The local provisioner on a real directory: the footprint as YAML files, readable by their owner
only (they hold a pull token), written again identically, files no longer wanted removed, destroy
idempotent, and a spec it cannot render refused. (That its files are exactly what the Pulumi
program declares: tests/infra/test_provisioners.py.)"""

from __future__ import annotations

import pytest
import yaml

from app.lifecycle.local import LocalProvisioner
from app.lifecycle.provisioner import ProvisionError, RegistrySpec
from app.lifecycle.resources import PlatformRefs, registry_outputs
from tests.support.registry_spec import SPEC, read_dir


def test_the_footprint_is_written_in_apply_order_for_the_owner_only(tmp_path):
    import os
    import stat

    lines = []
    outputs = LocalProvisioner(tmp_path).provision(SPEC, lines.append)
    files = sorted((tmp_path / "manifests" / "team-a").iterdir())
    assert files[0].name == "00-namespace.yaml" and yaml.safe_load(files[0].read_text())["kind"] == "Namespace"
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert outputs == registry_outputs(SPEC, PlatformRefs())
    assert any("Secret berth-pull-team-a in web" in line for line in lines)


def test_local_provision_is_idempotent_and_drops_what_left_the_spec(tmp_path):
    provisioner = LocalProvisioner(tmp_path)
    directory = tmp_path / "manifests" / "team-a"
    provisioner.provision(SPEC, lambda line: None)
    first = read_dir(directory)
    provisioner.provision(SPEC, lambda line: None)
    assert read_dir(directory) == first

    lines = []
    fewer = RegistrySpec(**{**SPEC.__dict__, "pull_namespaces": ("apps",)})
    provisioner.provision(fewer, lines.append)
    names = set(read_dir(directory))
    assert not any("web" in name for name in names)
    assert any(line.startswith("removed") and "pull-secret.web" in line for line in lines)
    assert not list(directory.glob(".*")), "no temporary files left behind"


def test_local_destroy_removes_the_directory_and_is_idempotent(tmp_path):
    provisioner = LocalProvisioner(tmp_path)
    provisioner.provision(SPEC, lambda line: None)
    other = RegistrySpec(org="acme", name="team-b", hostname="team-b.cr.example.test", pull_token="t")
    provisioner.provision(other, lambda line: None)
    lines = []
    provisioner.destroy(SPEC, lines.append)
    assert not (tmp_path / "manifests" / "team-a").exists()
    assert (tmp_path / "manifests" / "team-b").is_dir()
    assert lines == [f"removed {tmp_path / 'manifests' / 'team-a'}"]
    lines.clear()
    provisioner.destroy(SPEC, lines.append)
    assert "nothing to remove" in lines[0]
    assert list((tmp_path / "manifests").iterdir()) == [tmp_path / "manifests" / "team-b"]


def test_local_refuses_a_spec_it_cannot_render(tmp_path):
    bad = [
        RegistrySpec(org="acme", name="team-a", hostname="team-a.cr.example.test", pull_token=""),
        RegistrySpec(
            org="acme",
            name="team-a",
            hostname="team-a.cr.example.test",
            pull_token="t",
            pull_namespaces=("Not_A_Namespace",),
        ),
        RegistrySpec(org="acme", name="team-a", hostname="bad host", pull_token="t"),
    ]
    for spec in bad:
        with pytest.raises(ProvisionError) as caught:
            LocalProvisioner(tmp_path).provision(spec, lambda line: None)
        assert caught.value.step == "render" and not caught.value.transient
    assert not (tmp_path / "manifests" / "team-a").exists()


def test_local_check_says_when_the_data_dir_is_not_writable(tmp_path):
    LocalProvisioner(tmp_path).check()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ProvisionError, match="cannot create"):
        LocalProvisioner(blocker).check()
