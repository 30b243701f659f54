"""Fixtures: the real server on free ports, with fresh data dirs, cleaned up after."""

from __future__ import annotations

import secrets

import pytest

from tests.support.server import Server


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():
    """PostgreSQL databases made for this session's servers go when it ends."""
    yield
    from tests.support import postgres

    postgres.drop_databases()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for tests that only add content (each uses its own repository names)."""
    srv = Server(tmp_path_factory.mktemp("berth") / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, for tests that stop, kill or count things server-wide."""
    srv = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32))
    yield srv
    srv.stop()


@pytest.fixture
def repo_name(request) -> str:
    """A repository name unique to the test, in the default registry (path form)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")
    return f"default/t/{base[:80].strip('-')}-{secrets.token_hex(3)}"
