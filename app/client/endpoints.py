"""Which of a registry's addresses to print: the host form `<registry>.<BERTH_DOMAIN>` only
where it can work. With the built-in domain (`registry.localhost`, no DNS behind it, no port in
the name) a client on one machine can only use the path form `<host:port>/<registry>`."""

from __future__ import annotations

from app.config import DEFAULT_DOMAIN

HOST_FORM_HINT = (
    f"the host form <registry>.{DEFAULT_DOMAIN} is off here: set BERTH_DOMAIN to a domain "
    f"whose wildcard DNS (*.domain) reaches this server (docs/operations.md)"
)


def host_form_works(endpoint: str | None) -> bool:
    """False for a host-form endpoint under the built-in domain (nothing resolves it)."""
    if not endpoint:
        return False
    host = endpoint.split("/", 1)[0].split(":", 1)[0].lower().rstrip(".")
    return host != DEFAULT_DOMAIN and not host.endswith("." + DEFAULT_DOMAIN)
