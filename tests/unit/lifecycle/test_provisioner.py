"""The provisioner interface's own pieces: provisioning switched off makes nothing and says so;
a ProvisionError carries its step and whether a retry may help."""

from __future__ import annotations

from app.lifecycle.provisioner import NoProvisioner, ProvisionError, RegistrySpec


def test_with_provisioning_off_nothing_is_made():
    lines = []
    spec = RegistrySpec(org="o", name="r", hostname="r.example")
    assert NoProvisioner().provision(spec, lines.append) == {"endpoint": "r.example"}
    NoProvisioner().destroy(spec, lines.append)
    assert len(lines) == 2 and all("provisioning is off" in line for line in lines)


def test_a_provision_error_says_where_and_whether_to_retry():
    error = ProvisionError("the API server timed out", step="up", transient=True)
    assert (str(error), error.step, error.transient) == ("the API server timed out", "up", True)
    assert not ProvisionError("bad spec").transient


def test_a_spec_never_shows_its_pull_token():
    assert "berth_secret" not in repr(RegistrySpec(org="o", name="r", hostname="r.example", pull_token="berth_secret"))
