"""BERTH_DNS_RESOLVER is read once, at start: a value that is not IP addresses with optional ports
stops the server with a message instead of failing every verification."""

from __future__ import annotations

import pytest

from app.services.custom_domains import parse_resolvers


def test_resolvers_are_ip_addresses_with_optional_ports():
    assert parse_resolvers("") == []
    assert parse_resolvers("10.0.0.10, 127.0.0.1:5353,::1,[::1]:5300") == [
        ("10.0.0.10", 53),
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 5300),
    ]


@pytest.mark.parametrize("value", ["dns.example", "1.2.3.4:x", "1.2.3.4:0", "1.2.3.4:65536", "[::1]x", "1.2.3.4:５３"])
def test_a_resolver_that_is_not_an_address_stops_the_server_with_a_message(value):
    with pytest.raises(SystemExit, match="BERTH_DNS_RESOLVER"):
        parse_resolvers(value)
