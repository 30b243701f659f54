"""Which registry and repository a data-plane request is about: the gateway's registry header,
then the Host (`<registry>.<domain>` or a verified custom domain), else the first path segment;
and a `from=` mount source only inside the target's own registry."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import Organization, Registry
from app.oci.target import Target, load_registry, parse_target, same_registry_repository, target_in
from app.spec.errors import RegistryError

DOMAIN = "registry.example.com"


def test_on_the_shared_endpoint_the_first_path_segment_names_the_registry():
    assert parse_target("acme/team/app", "localhost", DOMAIN) == Target("acme/team/app", "acme", "team/app", False)


def test_a_platform_host_names_the_registry_and_the_whole_name_is_the_repository():
    target = parse_target("team/app", "Acme.Registry.Example.com", DOMAIN)
    assert target == Target("team/app", "acme", "team/app", True)
    assert target.url("manifests/v1") == "/v2/team/app/manifests/v1"


def test_the_gateways_registry_header_comes_before_the_host():
    assert parse_target("app", "acme.registry.example.com", DOMAIN, gateway_registry="other").registry_name == "other"


def test_a_verified_custom_domain_names_its_registry_an_unverified_one_does_not(database):
    org = Organization.create(name="o")
    Registry.create(org=org, name="acme", custom_domain="images.acme.test", custom_domain_verified_at=dt.datetime.now())
    Registry.create(org=org, name="beta", custom_domain="images.beta.test")
    assert parse_target("app", "images.acme.test", DOMAIN).registry_name == "acme"
    assert parse_target("beta/app", "images.beta.test", DOMAIN) == Target("beta/app", "beta", "app", False)


def test_a_path_form_name_without_a_repository_is_name_invalid():
    with pytest.raises(RegistryError) as caught:
        target_in("acme", None)
    assert caught.value.code == "NAME_INVALID" and "no repository" in caught.value.message


@pytest.mark.parametrize("name", ["Acme/app", "acme//app", "acme/app/", "", "a" * 300 + "/x"])
def test_an_invalid_repository_name_is_name_invalid_on_either_form(name):
    for registry in (None, "acme"):
        with pytest.raises(RegistryError) as caught:
            target_in(name, registry)
        assert caught.value.code == "NAME_INVALID"


def test_the_targets_registry_is_loaded_by_name(database):
    Registry.create(org=Organization.create(name="o"), name="acme")
    assert load_registry(target_in("acme/app", None)).name == "acme"
    assert load_registry(target_in("ghost/app", None)) is None


def test_a_mount_source_in_the_same_registry_is_named_as_inside_it():
    assert same_registry_repository(target_in("acme/app", None), "acme/base/img") == "base/img"
    assert same_registry_repository(target_in("app", "acme"), "base/img") == "base/img"


@pytest.mark.parametrize("source", ["other/base", "acme", "ACME/base", "acme/Base"])
def test_a_mount_source_elsewhere_or_malformed_is_none(source):
    assert same_registry_repository(target_in("acme/app", None), source) is None
