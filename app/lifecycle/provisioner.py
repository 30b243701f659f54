"""The Provisioner interface: what the operation worker asks of whatever builds a registry's
Kubernetes footprint (namespace, Certificate, HTTPRoute, NetworkPolicy, pull Secrets).

Implementations: the local provisioner (the embedded default, renders YAML for GitOps) and the
Pulumi provisioner (one Automation API stack per registry). Both are driven from one pure
description of the registry, `RegistrySpec`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

Log = Callable[[str], None]
"""Where a provisioner writes its progress: each call is one line of the operation's log."""


@dataclass(frozen=True)
class RegistrySpec:
    org: str
    name: str
    hostname: str  # <name>.<BERTH_DOMAIN>
    visibility: str = "private"
    custom_domain: str | None = None
    pull_namespaces: tuple[str, ...] = ()  # workload namespaces that get the pull Secret too
    pull_username: str = "berth"
    pull_token: str = field(default="", repr=False)  # a pull-only access token; a secret
    server: str = ""  # the registry host clients log in to (hostname unless overridden)


class ProvisionError(Exception):
    """A provisioning step failed. `transient` failures are retried with backoff."""

    def __init__(self, message: str, *, step: str = "", transient: bool = False) -> None:
        super().__init__(message)
        self.step = step
        self.transient = transient


class Provisioner(abc.ABC):
    name = "abstract"

    @abc.abstractmethod
    def provision(self, spec: RegistrySpec, log: Log) -> dict[str, str]:
        """Create or update the registry's footprint; idempotent. Returns its outputs
        (at least `endpoint`, and the pull secret names)."""

    @abc.abstractmethod
    def destroy(self, spec: RegistrySpec, log: Log) -> None:
        """Remove the registry's footprint; idempotent (nothing there is success)."""

    def check(self) -> None:
        """Raise ProvisionError with what to do when this provisioner cannot run here."""


class NoProvisioner(Provisioner):
    """Provisioning off (`BERTH_PROVISIONER=none`): registries need no Kubernetes footprint."""

    name = "none"

    def provision(self, spec: RegistrySpec, log: Log) -> dict[str, str]:
        log("provisioning is off (BERTH_PROVISIONER=none): nothing to create")
        return {"endpoint": spec.hostname}

    def destroy(self, spec: RegistrySpec, log: Log) -> None:
        log("provisioning is off (BERTH_PROVISIONER=none): nothing to destroy")
