"""Which registry and repository a data-plane request is about."""

from __future__ import annotations

from dataclasses import dataclass

from app.db.models import Registry
from app.services.endpoints import registry_named_by
from app.services.registries import find_registry
from app.spec.errors import RegistryError
from app.spec.names import check_repository


@dataclass(frozen=True)
class Target:
    name: str  # the name as the client wrote it: used in Location headers and listings
    registry_name: str
    repository: str  # the name inside the registry
    host_form: bool

    def url(self, suffix: str) -> str:
        return f"/v2/{self.name}/{suffix}"


def parse_target(name: str, host: str, domain: str, gateway_registry: str | None = None) -> Target:
    """In order: the registry the gateway names (a header believed only from trusted proxies),
    the Host header (`<registry>.<domain>` or a verified custom domain), else the first path
    segment (`/v2/<registry>/<repository>`)."""
    return target_in(name, gateway_registry or registry_named_by(host, domain))


def target_in(name: str, registry_name: str | None) -> Target:
    """`name` on an endpoint that names `registry_name` (None: the shared endpoint, path form)."""
    check_repository(name)
    if registry_name is not None:
        return Target(name, registry_name, name, True)
    registry_name, _, repository = name.partition("/")
    if not repository:
        raise RegistryError(
            "NAME_INVALID",
            f"{name!r} names a registry but no repository: use <registry>/<repository>",
        )
    return Target(name, registry_name, repository, False)


def load_registry(target: Target) -> Registry | None:
    return find_registry(target.registry_name)


def same_registry_repository(target: Target, other_name: str) -> str | None:
    """A `from=` repository named the way the client names repositories, if it lies in the
    target's registry; None when it lies elsewhere (isolation: no mounting across registries)."""
    try:
        check_repository(other_name)
    except RegistryError:
        return None
    if target.host_form:
        return other_name
    registry_name, _, repository = other_name.partition("/")
    return repository if registry_name == target.registry_name and repository else None
