"""Custom domains: a hostname an organization claims for one of its registries, routed only once
the claim is proven through DNS.

- A claim is a lowercase DNS hostname (case and a trailing dot are ignored), never the platform's
  own name nor a name under it (those name registries), and unique in the deployment. A claim
  nobody verifies within CLAIM_TTL stops blocking others, so nobody can squat a name.
- Proof: the TXT record `_berth-challenge.<domain>` holds the registry's challenge value,
  looked up through `BERTH_DNS_RESOLVER` (else the machine's resolvers).
- Until verified, nothing routes the name: the registry's footprint has no listener, route or
  certificate for it, and neither the data plane nor the token service resolves it
  (app/services/endpoints.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from app.db.models import Registry, utcnow
from app.db.prepared import Prepared
from app.spec.errors import RegistryError

CHALLENGE_LABEL = "_berth-challenge"
CHALLENGE_PREFIX = "berth-domain-verification="
CLAIM_TTL = dt.timedelta(days=7)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# At least two labels, the last alphabetic: a name public DNS can hold (no IP literals, no
# single-label names such as `localhost`).
HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z)(?:{_LABEL}\.)+[a-z]{{2,63}}")


def normalize(value: object, platform_domain: str) -> str | None:
    """The claim a request asks for (None removes it), or INVALID saying why not."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 254:
        raise _invalid("custom_domain must be a DNS hostname such as 'images.example.com'")
    host = value.lower()
    host = host[:-1] if host.endswith(".") else host
    if not HOSTNAME.fullmatch(host):
        raise _invalid(
            f"custom_domain {value[:100]!r} is not a DNS hostname such as 'images.example.com' "
            "(letters, digits and '-' in dot-separated labels, ending in a top-level domain)"
        )
    platform = platform_domain.lower().rstrip(".")
    if platform and (host == platform or host.endswith("." + platform)):
        raise _invalid(
            f"custom_domain {host!r} is the platform's own name or under it; those name registries "
            f"(<registry>.{platform}): use a domain of your own"
        )
    return host


def _invalid(message: str) -> RegistryError:
    return RegistryError("INVALID", message, field="custom_domain")


def claim(registry: Registry, domain: str | None) -> dict:
    """The registry fields that record a (new) claim of `domain`; inside the caller's transaction.
    Another registry's claim blocks it (CONFLICT) unless it is unverified and older than
    CLAIM_TTL, in which case it is released here."""
    if domain is None:
        return {
            "custom_domain": None,
            "custom_domain_challenge": None,
            "custom_domain_claimed_at": None,
            "custom_domain_verified_at": None,
        }
    if domain == registry.custom_domain:
        return {}  # unchanged: keep the challenge and the verification
    holder = Registry.get_or_none((Registry.custom_domain == domain) & (Registry.id != registry.id))
    if holder is not None:
        stale = (
            holder.custom_domain_verified_at is None
            and holder.custom_domain_claimed_at is not None
            and holder.custom_domain_claimed_at < utcnow() - CLAIM_TTL
        )
        if not stale:
            raise RegistryError(
                "CONFLICT", f"custom_domain {domain!r} is claimed by another registry", field="custom_domain"
            )
        Registry.update(custom_domain=None, custom_domain_challenge=None, custom_domain_claimed_at=None).where(
            (Registry.id == holder.id)
            & (Registry.custom_domain == domain)
            & Registry.custom_domain_verified_at.is_null()
        ).execute()
    return {
        "custom_domain": domain,
        "custom_domain_challenge": secrets.token_urlsafe(24),
        "custom_domain_claimed_at": utcnow(),
        "custom_domain_verified_at": None,
    }


def status(registry: Registry) -> str | None:
    if not registry.custom_domain:
        return None
    return "verified" if registry.custom_domain_verified_at else "pending"


def routed(registry: Registry) -> str | None:
    """The custom domain that routes to the registry: a verified one only."""
    return registry.custom_domain if registry.custom_domain_verified_at else None


def record_name(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def challenge(registry: Registry) -> dict | None:
    """The DNS record that proves the claim, as the API and CLI show it."""
    if not registry.custom_domain or not registry.custom_domain_challenge:
        return None
    return {
        "type": "TXT",
        "name": record_name(registry.custom_domain),
        "value": CHALLENGE_PREFIX + registry.custom_domain_challenge,
    }


_VERIFIED = Prepared(
    lambda host: Registry.select(Registry.name).where(
        (Registry.custom_domain == host) & Registry.custom_domain_verified_at.is_null(False)
    ),
    "s",
)


def registry_name_of(host: str) -> str | None:
    """The registry a verified custom domain (lowercase, no trailing dot) routes to."""
    row = _VERIFIED.first(host)
    return row[0] if row is not None else None


@dataclass(frozen=True)
class DnsSettings:
    resolver: str = ""  # "ip[:port]" (comma list); empty: the machine's resolvers
    timeout: float = 3.0


class DomainVerifier:
    """Looks up a claim's TXT record. A lookup that cannot be made (timeout, no resolver) is
    UNAVAILABLE; a record that is absent or holds something else is simply not proof."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        # Parsed once, at start: a bad BERTH_DNS_RESOLVER stops the server with a message
        # instead of failing each verification.
        self.nameservers = parse_resolvers(settings.resolver)

    def _resolver(self) -> dns.resolver.Resolver:
        if not self.nameservers:
            resolver = dns.resolver.Resolver()
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in self.nameservers]
        resolver.lifetime = resolver.timeout = self.settings.timeout
        return resolver

    def holds(self, domain: str, expected: str) -> bool:
        """Whether `_berth-challenge.<domain>` has a TXT string equal to `expected`."""
        try:
            answer = self._resolver().resolve(dns.name.from_text(record_name(domain)), "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        except (dns.exception.DNSException, OSError) as exc:
            raise RegistryError(
                "UNAVAILABLE",
                f"the DNS lookup of {record_name(domain)} failed ({exc.__class__.__name__}); try again shortly",
                status=503,
                headers={"Retry-After": "30"},
            ) from None
        for rdata in answer:
            value = b"".join(rdata.strings).decode("utf-8", "replace")
            if secrets.compare_digest(value.encode(), expected.encode()):
                return True
        return False


def parse_resolvers(value: str) -> list[tuple[str, int]]:
    """`BERTH_DNS_RESOLVER`: IP addresses, each with an optional port (`1.2.3.4`, `1.2.3.4:5353`,
    `::1`, `[::1]:5353`), comma-separated; empty: the machine's resolvers."""
    servers = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        if item.startswith("["):
            host, _, port = item[1:].partition("]")
            port = port[1:] if port.startswith(":") else (port or "53")
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, "53"
        try:
            ipaddress.ip_address(host)
            number = int(port) if port.isascii() and port.isdigit() else -1
        except ValueError:
            number = -1
        if not 0 < number < 65536:
            raise SystemExit(
                f"BERTH_DNS_RESOLVER={value!r}: {item!r} is not an IP address with an optional port "
                "(e.g. 10.0.0.10 or 127.0.0.1:5353)"
            )
        servers.append((host, number))
    return servers
