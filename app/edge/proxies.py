"""Who is really calling, and over what scheme: forwarding headers are believed only when the
connection comes from a configured proxy (`BERTH_TRUSTED_PROXIES`, CIDRs). From anywhere else
they are ignored, so a spoofed `X-Forwarded-For` or registry header changes nothing."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import falcon

REGISTRY_HEADER = "X-Berth-Registry"
_FORWARDED_PAIR = re.compile(r'(?i)\b(for|proto)=("?)([^;,"]+)\2')


def parse_networks(value: str) -> tuple:
    networks = []
    for item in (v.strip() for v in value.replace(";", ",").split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SystemExit(f"{item!r} is not an IP network (use CIDRs such as 10.0.0.0/8)") from None
    return tuple(networks)


def _ip(value: str):
    value = value.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def in_networks(address: str | None, networks: tuple) -> bool:
    ip = _ip(address or "")
    return ip is not None and any(ip in net for net in networks)


@dataclass(frozen=True)
class Peer:
    client_ip: str
    scheme: str
    registry: str | None  # from the gateway's registry header, when trusted
    via_proxy: bool


class ProxyTrust:
    def __init__(self, trusted: tuple) -> None:
        self.trusted = trusted

    def peer(self, req: falcon.Request) -> Peer:
        remote = req.remote_addr or ""
        if not self.trusted or not in_networks(remote, self.trusted):
            return Peer(remote, req.scheme, None, False)
        chain: list[str] = []
        proto = None
        forwarded = req.get_header("Forwarded")
        if forwarded:
            for key, _, value in _FORWARDED_PAIR.findall(forwarded):
                if key.lower() == "for":
                    chain.append(value)
                elif key.lower() == "proto" and proto is None:
                    proto = value.lower()
        else:
            xff = req.get_header("X-Forwarded-For")
            if xff:
                chain = [v.strip() for v in xff.split(",") if v.strip()]
            proto = (req.get_header("X-Forwarded-Proto") or "").split(",")[0].strip().lower() or None
        # The client is the right-most address that is not one of our proxies.
        client = remote
        for hop in reversed(chain):
            ip = _ip(hop)
            if ip is None:
                break
            client = str(ip)
            if not any(ip in net for net in self.trusted):
                break
        registry = (req.get_header(REGISTRY_HEADER) or "").strip().lower() or None
        return Peer(client, proto if proto in ("http", "https") else req.scheme, registry, True)
