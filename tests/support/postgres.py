"""The real PostgreSQL for tests: a fresh database per use (`berth_test_<random>`), dropped at the
end of the session. Under CI (CI=true) a missing PostgreSQL fails the test; elsewhere it skips.

`BERTH_TEST_POSTGRES` names the server's maintenance database (default
postgresql://postgres@127.0.0.1:5432/test, trust auth; the user falls back to the current one).
`BERTH_TEST_DATABASE=postgres` runs every test server on a database of its own there.
"""

from __future__ import annotations

import getpass
import os
import secrets
from urllib.parse import urlparse, urlunparse

import pytest

from tests.support.components import IN_CI

ADMIN_URL = os.environ.get("BERTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ALL_SERVERS_ON_POSTGRES = os.environ.get("BERTH_TEST_DATABASE", "").lower() in ("postgres", "postgresql")

_created: list[str] = []
_admin_url: str | None = None


def _connect(url: str):
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=3)
    conn.autocommit = True
    return conn


def admin_url() -> str | None:
    """A URL that connects to the maintenance database, or None when PostgreSQL is not there."""
    global _admin_url
    if _admin_url is not None:
        return _admin_url
    candidates = [ADMIN_URL]
    parsed = urlparse(ADMIN_URL)
    if parsed.username == "postgres":
        candidates.append(
            urlunparse(parsed._replace(netloc=parsed.netloc.replace("postgres@", f"{getpass.getuser()}@", 1)))
        )
    for url in candidates:
        try:
            _connect(url).close()
        except Exception:
            continue
        _admin_url = url
        return url
    return None


def require_postgres() -> str:
    url = admin_url()
    if url is None:
        message = f"PostgreSQL is not reachable at {ADMIN_URL} (start it, or set BERTH_TEST_POSTGRES)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


def create_database() -> str:
    """A new, empty database; returns its URL. Dropped by `drop_databases` (session end)."""
    url = require_postgres()
    name = f"berth_test_{secrets.token_hex(6)}"
    conn = _connect(url)
    try:
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    _created.append(name)
    return urlunparse(urlparse(url)._replace(path="/" + name))


def sql(database_url: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = _connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def terminate_connections(database_url: str) -> int:
    """Drop every server connection to the database (as a restart or network cut would)."""
    name = urlparse(database_url).path.lstrip("/")
    rows = sql(
        admin_url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    return sum(1 for (ok,) in rows if ok)


def drop_databases() -> None:
    url = admin_url()
    if url is None:
        return
    conn = _connect(url)
    try:
        while _created:
            name = _created.pop()
            cur = conn.cursor()
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()
