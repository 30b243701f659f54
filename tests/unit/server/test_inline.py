"""Which requests the event loop runs itself (app/server/inline.py): short reads, and manifest
pushes small enough to be cheap, never a blob body or a request waitress could not parse."""

from __future__ import annotations

import types

import pytest

from app.config import Settings
from app.server.inline import SMALL_PUT, enabled, is_inline, pushes_inline

DIGEST = "sha256:" + "a" * 64


def request(command, path, length=0, error=None):
    return types.SimpleNamespace(command=command, path=path, content_length=length, error=error)


@pytest.mark.parametrize(
    ("command", "path", "length", "inline"),
    [
        ("GET", "/v2/o/app/manifests/v1", 0, True),
        ("HEAD", f"/v2/o/app/manifests/{DIGEST}", 0, True),
        ("HEAD", f"/v2/o/app/blobs/{DIGEST}", 0, True),
        ("GET", f"/v2/o/app/blobs/{DIGEST}", 0, False),  # streams: a request thread's work
        ("GET", "/v2/o/app/manifests/v1", 10, False),  # a read with a body is not a short read
        ("PUT", "/v2/o/app/manifests/v1", 400, True),
        ("PUT", f"/v2/o/app/manifests/{DIGEST}", SMALL_PUT, True),
        ("PUT", "/v2/o/app/manifests/v1", SMALL_PUT + 1, False),  # large: parsed on a request thread
        ("PUT", "/v2/o/app/manifests/v1", 0, False),
        ("PUT", "/v2/o/app/blobs/uploads/0d7c", 400, False),
        ("PATCH", "/v2/o/app/blobs/uploads/0d7c", 400, False),
        ("POST", "/v2/o/app/blobs/uploads/", 0, False),
        ("DELETE", "/v2/o/app/manifests/v1", 0, False),
        ("PUT", "/api/v1/orgs/o/registries/r", 100, False),
    ],
)
def test_what_the_loop_runs_itself(command, path, length, inline):
    assert is_inline(request(command, path, length)) is inline


def test_a_request_waitress_could_not_parse_is_left_to_waitress():
    assert not is_inline(request("GET", "/v2/o/app/manifests/v1", error=ValueError("bad")))
    assert not is_inline(types.SimpleNamespace(error=None))  # no command, no path


def test_pushes_run_on_the_loop_only_when_asked():
    put = request("PUT", "/v2/o/app/manifests/v1", 400)
    assert is_inline(put) and not is_inline(put, pushes=False)
    assert is_inline(request("GET", "/v2/o/app/manifests/v1"), pushes=False)


@pytest.mark.parametrize(
    ("url", "on"),
    [
        ("sqlite:////var/lib/berth/berth.db", True),
        ("postgresql://berth@127.0.0.1:5432/berth", True),
        ("postgresql://berth@localhost/berth", True),
        ("postgresql://berth@[::1]:5432/berth", True),
        ("postgresql:///berth", True),  # libpq's Unix socket
        ("postgresql://berth@/berth?host=/var/run/postgresql", True),
        ("postgresql://berth@db.internal:5432/berth", False),  # a network away: request threads
        ("postgresql://berth@10.0.0.5/berth", False),
        ("postgresql://berth@127.0.0.1/berth?host=db.internal", False),
        ("postgresql://berth@127.0.0.1:6432/berth?server_prepare=off", False),  # a pooler (PgBouncer)
    ],
)
def test_auto_runs_on_the_loop_with_sqlite_or_a_postgresql_server_on_this_machine(url, on):
    settings = Settings(database_url=url, inline_reads="auto")
    assert enabled(settings) is on
    assert pushes_inline(settings) is url.startswith("sqlite")
    assert not enabled(Settings(database_url=url, inline_reads="auto", redis_url="redis://127.0.0.1:6379"))
