"""The registry footprint the provisioner tests render (tests/unit/lifecycle/test_local.py, which
tests the local provisioner alone, and tests/infra/test_provisioners.py, which holds it against
the Pulumi program), and how they read the YAML files it writes."""

from __future__ import annotations

import yaml

from app.lifecycle.provisioner import RegistrySpec

SPEC = RegistrySpec(
    org="acme",
    name="team-a",
    hostname="team-a.cr.example.test",
    custom_domain="images.acme.test",
    pull_namespaces=("apps", "web"),
    pull_username="ci",
    pull_token="berth_tok",
)


def read_dir(directory):
    """File name -> parsed YAML, for every *.yaml file in `directory`."""
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))}
