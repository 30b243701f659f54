"""Which registry a host names, on a real SQLite database: `<registry>.<domain>`, then a
verified custom domain, else the shared endpoint (None)."""

from __future__ import annotations

import pytest

from app.db.models import Organization, Registry, utcnow
from app.services import endpoints


@pytest.mark.parametrize(
    "host, name",
    [
        ("acme.registry.example", "acme"),
        ("ACME.Registry.Example.", "acme"),
        ("a.b.registry.example", None),  # one label only
        ("registry.example", None),
        (".registry.example", None),
        ("acme.registry.example.evil", None),
        ("acmeregistry.example", None),
    ],
)
def test_the_platform_host_names_its_registry(host, name):
    assert endpoints.platform_registry(host, "registry.example") == name


def test_no_platform_domain_names_nothing():
    assert endpoints.platform_registry("acme.example", "") is None


def test_a_verified_custom_domain_names_its_registry_and_a_pending_one_does_not(database):
    org = Organization.create(name="o")
    Registry.create(org=org, name="verified", custom_domain="images.acme.com", custom_domain_verified_at=utcnow())
    Registry.create(org=org, name="pending", custom_domain="pending.acme.com")
    assert endpoints.registry_named_by("Images.Acme.Com.", "registry.example") == "verified"
    assert endpoints.registry_named_by("pending.acme.com", "registry.example") is None
    assert endpoints.registry_named_by("x.registry.example", "registry.example") == "x"
    for shared in ("localhost", "127.0.0.1", "registry.example", "unknown.example.org"):
        assert endpoints.registry_named_by(shared, "registry.example") is None
