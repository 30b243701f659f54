"""The local provisioner on a real directory: the footprint as YAML files in apply order,
readable by their owner only (they hold a pull token), files no longer wanted removed, and
destroy idempotent."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest
import yaml

from app.lifecycle.local import LocalProvisioner
from app.lifecycle.provisioner import ProvisionError, RegistrySpec
from app.lifecycle.resources import registry_outputs, PlatformRefs

SPEC = RegistrySpec(org="acme", name="images", hostname="images.registry.example", pull_namespaces=("web",),
                    pull_token="berth_pull")


def test_the_footprint_is_written_in_apply_order_for_the_owner_only(tmp_path):
    lines = []
    provisioner = LocalProvisioner(tmp_path)
    provisioner.check()
    outputs = provisioner.provision(SPEC, lines.append)
    files = sorted((tmp_path / "manifests" / "images").iterdir())
    assert files[0].name == "00-namespace.yaml" and yaml.safe_load(files[0].read_text())["kind"] == "Namespace"
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert not [f for f in files if f.name.startswith(".")]  # no temporary files left
    assert outputs == registry_outputs(SPEC, PlatformRefs())
    assert any("Secret berth-pull-images in web" in line for line in lines)


def test_a_namespace_no_longer_wanted_loses_its_files(tmp_path):
    provisioner = LocalProvisioner(tmp_path)
    provisioner.provision(SPEC, lambda line: None)
    lines = []
    provisioner.provision(replace(SPEC, pull_namespaces=()), lines.append)
    names = [f.name for f in (tmp_path / "manifests" / "images").iterdir()]
    assert not any("web" in n for n in names) and any("removed" in line for line in lines)


def test_destroy_removes_the_directory_and_again_is_nothing(tmp_path):
    provisioner = LocalProvisioner(tmp_path)
    provisioner.provision(SPEC, lambda line: None)
    provisioner.destroy(SPEC, lambda line: None)
    assert list((tmp_path / "manifests").iterdir()) == []
    lines = []
    provisioner.destroy(SPEC, lines.append)
    assert "nothing to remove" in lines[0]


def test_a_bad_spec_is_a_render_error(tmp_path):
    with pytest.raises(ProvisionError) as raised:
        LocalProvisioner(tmp_path).provision(replace(SPEC, pull_token=""), lambda line: None)
    assert raised.value.step == "render" and not raised.value.transient


def test_an_unwritable_root_fails_the_check(tmp_path):
    (tmp_path / "manifests").write_text("a file where the directory should be")
    with pytest.raises(ProvisionError) as raised:
        LocalProvisioner(tmp_path).check()
    assert raised.value.step == "check"
