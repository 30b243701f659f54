"""A long tag list is served from a per-process cache that is never stale: every worker of a
`--workers 2` server (and any replica) checks the repository's tags in the database first."""

from __future__ import annotations

import secrets

import pytest

from tests.support.registry_client import RegistryClient
from tests.support.server import Server


@pytest.fixture
def srv(tmp_path):
    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_WORKERS": "2"}).start()
    yield server
    server.stop()


def listing(server: Server, **params) -> dict:
    s = server.session()
    s.headers["Connection"] = "close"  # a new connection: either worker answers
    r = RegistryClient(server.url, s).request("GET", "/v2/default/many/tags/list", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_cached_tag_lists_follow_every_change(srv):
    c = RegistryClient(srv.url, srv.session())
    _, body, _ = c.push_image("default/many", "t0000")
    other, other_body, _ = c.push_image("default/many", None, layers=[b"other"])
    expected = {"t0000"}
    for i in range(1, 300):
        assert c.push_manifest("default/many", f"t{i:04d}", body).status_code == 201
        expected.add(f"t{i:04d}")

    def check():
        for _ in range(6):  # enough new connections to reach (and fill) both workers' caches
            assert listing(srv)["tags"] == sorted(expected)
        page = listing(srv, n=10, last="t0100")
        assert page["tags"] == sorted(t for t in expected if t > "t0100")[:10]

    check()
    assert c.request("DELETE", "/v2/default/many/manifests/t0150").status_code == 202
    expected.discard("t0150")
    check()
    assert c.push_manifest("default/many", "zz-new", body).status_code == 201
    expected.add("zz-new")
    check()
    # The newest tag deleted and another pushed at once: the count is unchanged.
    assert c.request("DELETE", "/v2/default/many/manifests/zz-new").status_code == 202
    assert c.push_manifest("default/many", "zz-newer", body).status_code == 201
    expected.discard("zz-new")
    expected.add("zz-newer")
    check()
    # A tag moved to another manifest: the names are the same, and still right.
    assert c.push_manifest("default/many", "t0001", other_body).status_code == 201
    check()
    assert c.request("GET", "/v2/default/many/manifests/t0001").headers["Docker-Content-Digest"] == other
