"""Which registry an address names: the one rule the data plane and the token service share.

In order: the platform host `<registry>.<BERTH_DOMAIN>`, then a verified custom domain; any
other host is the shared endpoint, where a request's first path segment names the registry. (A
registry header stamped by a trusted gateway comes before all of these: app/oci/target.py.)
"""

from __future__ import annotations

from app.services import custom_domains


def platform_registry(host: str, domain: str) -> str | None:
    """`<registry>.<domain>` -> registry; None for any other host."""
    host = host.lower().rstrip(".")
    suffix = "." + domain.lower()
    if domain and host.endswith(suffix):
        label = host[: -len(suffix)]
        if label and "." not in label:
            return label
    return None


def registry_named_by(host: str, domain: str) -> str | None:
    """The registry a Host (or a token request's `service`, without its port) names, or None
    for the shared endpoint."""
    name = platform_registry(host, domain)
    if name is not None:
        return name
    host = host.lower().rstrip(".")
    if _may_be_custom_domain(host, domain):
        return custom_domains.registry_name_of(host)
    return None


def _may_be_custom_domain(host: str, domain: str) -> bool:
    """Skips the lookup for what can never be a claim: IP literals and single labels such as
    `localhost` (a claim's last label is alphabetic), the platform's own names."""
    domain = domain.lower()
    return host != domain and not host.endswith("." + domain) and custom_domains.HOSTNAME.fullmatch(host) is not None
