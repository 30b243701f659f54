"""Organizations and registries: creation, lookup, and the first-start bootstrap."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import peewee as pw

from app.auth.token_secrets import generate_token, hash_token
from app.db.checked import CheckedLookup
from app.db.models import AccessToken, Organization, Registry
from app.db.setup import serialize, transaction
from app.services import custom_domains, immutable_tags, manifest_policy, paging, quotas
from app.spec.errors import RegistryError
from app.spec.names import REGISTRY, RESERVED_REGISTRY_NAMES, check_registry

VISIBILITIES = ("private", "public")
BOOTSTRAP_ORG = "default"
BOOTSTRAP_REGISTRY = "default"


def find_org(name: str) -> Organization | None:
    return Organization.get_or_none(Organization.name == name)


def get_org(name: str) -> Organization:
    org = find_org(name)
    if org is None:
        raise RegistryError("NOT_FOUND", f"organization {name!r} not found")
    return org


def create_org(name: str) -> Organization:
    """A new organization. Its names follow the registry-name rules (a DNS label)."""
    check_registry(name)
    try:
        with transaction():
            return Organization.create(name=name)
    except pw.IntegrityError:
        raise RegistryError("CONFLICT", f"organization name {name!r} is taken") from None


# Kept between data-plane reads and checked, not read again, on PostgreSQL (app/db/checked.py).
_REGISTRY_BY_NAME = CheckedLookup(lambda n: Registry.select().where(Registry.name == n), "s", Registry)


def find_registry(name: str) -> Registry | None:
    return _REGISTRY_BY_NAME.first(name)


def validate_name(name: object) -> str:
    """A registry name, or INVALID naming the field and the exact rule broken."""
    if not isinstance(name, str) or not name:
        raise RegistryError("INVALID", "name is required: a DNS label such as 'team-images'", field="name")
    if len(name) > 63:
        raise RegistryError("INVALID", f"name is {len(name)} characters long; at most 63 are allowed", field="name")
    if not REGISTRY.fullmatch(name):
        raise RegistryError(
            "INVALID",
            f"name {name!r} is not a DNS label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            field="name",
        )
    if name in RESERVED_REGISTRY_NAMES:
        raise RegistryError("INVALID", f"name {name!r} is reserved", field="name")
    return name


_NAMESPACE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_visibility(value: object) -> str:
    if value not in VISIBILITIES:
        raise RegistryError("INVALID", f"visibility must be one of {list(VISIBILITIES)}", field="visibility")
    return value


def validate_pull_namespaces(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise RegistryError(
            "INVALID", "pull_namespaces must be a list of up to 50 Kubernetes namespace names", field="pull_namespaces"
        )
    for item in value:
        if not isinstance(item, str) or not _NAMESPACE.fullmatch(item):
            raise RegistryError(
                "INVALID",
                f"pull_namespaces: {str(item)[:80]!r} is not a Kubernetes namespace name (a DNS label)",
                field="pull_namespaces",
            )
    return sorted(set(value))


def create_registry(
    org: Organization,
    name: str,
    visibility: str = "private",
    created_by: str | None = None,
    *,
    status: str = "ready",
    custom_domain: str | None = None,
    pull_namespaces: list[str] | None = None,
    platform_domain: str = "",
) -> Registry:
    """A new registry; every field checked here, each error naming its field. A custom domain
    is claimed pending verification (app/services/custom_domains.py)."""
    validate_name(name)
    validate_visibility(visibility)
    custom_domain = custom_domains.normalize(custom_domain, platform_domain)
    pull_namespaces = validate_pull_namespaces(pull_namespaces)
    try:
        with transaction():
            registry = Registry.create(
                org=org,
                name=name,
                visibility=visibility,
                created_by=created_by,
                status=status,
                pull_namespaces=json.dumps(pull_namespaces),
            )
            if custom_domain is not None:
                _save(registry, custom_domains.claim(registry, custom_domain))
            return registry
    except pw.IntegrityError:
        if find_registry(name) is None and custom_domain is not None:  # a concurrent claim won
            raise RegistryError(
                "CONFLICT", f"custom_domain {custom_domain!r} is claimed by another registry", field="custom_domain"
            ) from None
        raise RegistryError("CONFLICT", f"registry name {name!r} is taken", field="name") from None


def _save(registry: Registry, values: dict) -> None:
    if values:
        Registry.update(**values).where(Registry.id == registry.id).execute()
        for key, value in values.items():
            setattr(registry, key, value)


def find(org: Organization, name: str) -> Registry | None:
    """A registry of `org` by name, None when it has none such (see get_registry for the refusal)."""
    return Registry.get_or_none((Registry.org == org) & (Registry.name == name))


def get_registry(org: Organization, name: str) -> Registry:
    """A registry of `org` by name; NOT_FOUND (never a hint of another org's registry)."""
    registry = find(org, name)
    if registry is None:
        raise RegistryError("NOT_FOUND", f"registry {name!r} not found in organization {org.name!r}")
    return registry


def pull_namespaces(registry: Registry) -> list[str]:
    return json.loads(registry.pull_namespaces or "[]")


def list_registries(org: Organization) -> list[Registry]:
    return list(org.registries.order_by(Registry.name))


def page_of_registries(org: Organization, page: paging.Page) -> paging.Rows:
    """The registries of `org`, by name."""
    return paging.keyset(Registry.select().where(Registry.org == org), Registry.name, page)


def orgs_with_ids(ids: list[int]) -> list[Organization]:
    """The organizations with these ids, sorted by name."""
    if not ids:
        return []
    return list(Organization.select().where(Organization.id.in_(ids)).order_by(Organization.name))


SKU_ROLES = ("owner", "admin")  # who may change a registry's SKU (it is what the organization pays)


def update_registry(registry: Registry, changes: dict, role: str | None = None, platform_domain: str = "") -> Registry:
    """Apply a PATCH: visibility, custom_domain (a new claim, pending verification), pull_namespaces,
    immutable_tags, manifest_policy (the whole policy, replaced), and `sku` (by an owner or admin
    only: `role` is the caller's). Unknown fields are refused."""
    allowed = {"visibility", "custom_domain", "pull_namespaces", "sku", "immutable_tags", "manifest_policy"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise RegistryError("INVALID", f"cannot change {unknown[0]!r}; changeable: {sorted(allowed)}", field=unknown[0])
    if registry.status == "deleting":
        raise RegistryError("CONFLICT", f"registry {registry.name!r} is being deleted")
    values: dict = {}
    if "visibility" in changes:
        values["visibility"] = validate_visibility(changes["visibility"])
    domain = custom_domains.normalize(changes["custom_domain"], platform_domain) if "custom_domain" in changes else None
    if "pull_namespaces" in changes:
        values["pull_namespaces"] = json.dumps(validate_pull_namespaces(changes["pull_namespaces"]))
    if "immutable_tags" in changes:
        values["immutable_tags"] = json.dumps(immutable_tags.validate(changes["immutable_tags"]))
    if "manifest_policy" in changes:
        values["manifest_policy"] = manifest_policy.stored(manifest_policy.validate(changes["manifest_policy"]))
    if "sku" in changes:
        if role not in SKU_ROLES:
            raise RegistryError(
                "DENIED",
                f"only an organization owner or admin may change a registry's SKU (your role: {role or 'none'})",
                field="sku",
            )
        values["sku"] = None if changes["sku"] is None else quotas.validate_sku(changes["sku"])
    try:
        with transaction():
            if "custom_domain" in changes:
                values.update(custom_domains.claim(registry, domain))
            _save(registry, values)
    except pw.IntegrityError:  # a concurrent claim of the same name won
        raise RegistryError(
            "CONFLICT", f"custom_domain {domain!r} is claimed by another registry", field="custom_domain"
        ) from None
    return registry


def bootstrap(data_dir: Path, token: str | None) -> str | None:
    """On an empty database: the `default` org, its private `default` registry and an owner token.

    Returns the generated token when one was generated (to be printed once), else None. The
    token is also written to `<data_dir>/bootstrap-token` with mode 0600.
    """
    with transaction():
        serialize("bootstrap")  # replicas starting together on an empty database: one bootstraps
        if Organization.select().exists():
            return None
        org = Organization.create(name=BOOTSTRAP_ORG)
        Registry.create(org=org, name=BOOTSTRAP_REGISTRY, visibility="private", created_by="bootstrap")
        generated = not token
        secret = token or generate_token()
        AccessToken.create(org=org, name="bootstrap", token_hash=hash_token(secret), role="owner")
    if generated:
        path = Path(data_dir) / "bootstrap-token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a file left from an earlier database keeps its mode through O_CREAT
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret
    return None
