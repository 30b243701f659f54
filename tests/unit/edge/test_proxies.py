"""Forwarding headers are believed only from a trusted proxy: from anywhere else a spoofed
X-Forwarded-For, Forwarded or registry header changes nothing."""

from __future__ import annotations

import falcon.testing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.edge.proxies import Peer, ProxyTrust, in_networks, parse_networks

PROXIES = parse_networks("10.0.0.0/8, fd00::/8")


def peer(remote: str, headers: dict | None = None, trusted: tuple = PROXIES) -> Peer:
    env = falcon.testing.create_environ(path="/v2/", headers=headers or {}, remote_addr=remote)
    return ProxyTrust(trusted).peer(falcon.Request(env))


def test_networks_are_parsed_from_commas_or_semicolons_and_blanks_are_skipped():
    assert [str(n) for n in parse_networks(" 10.0.0.0/8;192.168.1.7 ,, ::1/128 ")] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "::1/128",
    ]


def test_a_network_that_is_not_one_stops_the_process_naming_it():
    with pytest.raises(SystemExit, match="'10.0.0.300/8' is not an IP network"):
        parse_networks("10.0.0.0/8,10.0.0.300/8")


@pytest.mark.parametrize(
    ("address", "inside"),
    [("10.1.2.3", True), ("10.1.2.3:5000", True), ("[fd00::1]:443", True), ("fd00::1", True), ("11.0.0.1", False)],
)
def test_an_address_with_or_without_a_port_is_matched_against_the_networks(address, inside):
    assert in_networks(address, PROXIES) is inside


@given(st.text(max_size=60))
def test_any_text_as_an_address_gets_a_yes_or_no_never_an_exception(text):
    result = in_networks(text, parse_networks("0.0.0.0/0,::/0"))
    assert isinstance(result, bool)


def test_forwarding_headers_from_an_untrusted_peer_are_ignored():
    spoofed = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Berth-Registry": "acme"}
    assert peer("203.0.113.9", spoofed) == Peer("203.0.113.9", "http", None, False)


def test_with_no_trusted_proxies_configured_nothing_is_believed():
    assert peer("10.0.0.5", {"X-Forwarded-For": "1.2.3.4"}, trusted=()).client_ip == "10.0.0.5"


def test_from_a_trusted_proxy_the_client_is_the_rightmost_untrusted_hop():
    seen = peer("10.0.0.5", {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.4", "X-Forwarded-Proto": "https"})
    assert (seen.client_ip, seen.scheme, seen.via_proxy) == ("198.51.100.7", "https", True)


def test_the_forwarded_header_wins_over_x_forwarded_for():
    headers = {"Forwarded": 'for="[2001:db8::1]:4711";proto=HTTPS, for=10.0.0.3', "X-Forwarded-For": "6.6.6.6"}
    seen = peer("10.0.0.5", headers)
    assert (seen.client_ip, seen.scheme) == ("2001:db8::1", "https")


def test_an_unknown_forwarded_proto_keeps_the_connections_scheme():
    assert peer("10.0.0.5", {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "gopher"}).scheme == "http"


def test_a_trusted_proxys_registry_header_is_read_lowercased():
    assert peer("10.0.0.5", {"X-Berth-Registry": " Acme "}).registry == "acme"
