"""Which requests the event loop runs itself (app/server/inline.py): short reads, and manifest
pushes small enough to be cheap, never a blob body or a request waitress could not parse."""

from __future__ import annotations

import types

import pytest

from app.config import Settings
from app.server.inline import SMALL_PUT, enabled, is_inline, pushes_inline, uploads_inline
from app.services.uploads import INLINE_MOST

DIGEST = "sha256:" + "a" * 64


def request(command, path, length=0, error=None, chunked=False):
    return types.SimpleNamespace(command=command, path=path, content_length=length, error=error, chunked=chunked)


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


SESSION = "0d7c6a3e-3c1e-4a7e-9d2b-5b8f3f6c2a10"


@pytest.mark.parametrize(
    ("command", "path", "length", "held", "inline"),
    [
        ("POST", "/v2/o/app/blobs/uploads/", 0, None, True),  # a session starts (or a mount)
        ("POST", "/v2/o/app/blobs/uploads/", INLINE_MOST, None, True),  # a whole small blob
        ("POST", "/v2/o/app/blobs/uploads/", INLINE_MOST + 1, None, False),
        ("PATCH", f"/v2/o/app/blobs/uploads/{SESSION}", 400, 0, True),
        ("PUT", f"/v2/o/app/blobs/uploads/{SESSION}", 400, INLINE_MOST, True),
        ("PUT", f"/v2/o/app/blobs/uploads/{SESSION}", 0, 100, True),  # the closing PUT of a small one
        ("PUT", f"/v2/o/app/blobs/uploads/{SESSION}", 0, INLINE_MOST + 1, False),  # finishing a large one
        ("PATCH", f"/v2/o/app/blobs/uploads/{SESSION}", INLINE_MOST + 1, 0, False),
        ("PUT", f"/v2/o/app/blobs/uploads/{SESSION}", 10, None, False),  # not a session known here
        ("PUT", "/v2/o/app/blobs/uploads/", 10, 0, False),  # no session named
        ("POST", f"/v2/o/app/blobs/uploads/{SESSION}", 0, 0, False),
        ("DELETE", f"/v2/o/app/blobs/uploads/{SESSION}", 0, 0, False),
    ],
)
def test_small_uploads_run_on_the_loop_when_asked(command, path, length, held, inline):
    asked = []

    def upload_size(upload_id):
        asked.append(upload_id)
        return held

    assert is_inline(request(command, path, length), upload_size=upload_size) is inline
    # Looked up only for a PATCH or PUT naming a session, with a small enough body.
    looked_up = command in ("PATCH", "PUT") and SESSION in path and length <= INLINE_MOST
    assert asked == ([SESSION] if looked_up else [])
    assert not is_inline(request(command, path, length))  # not asked: request threads


def test_a_chunked_upload_body_is_left_to_the_request_threads():
    assert not is_inline(request("POST", "/v2/o/app/blobs/uploads/", 0, chunked=True), upload_size=lambda _: 0)


@pytest.mark.parametrize(
    ("database", "storage", "on"),
    [
        ("sqlite:////var/lib/berth/berth.db", "file:///var/lib/berth/storage", True),
        ("sqlite:////var/lib/berth/berth.db", "gs://bucket/prefix", False),  # writes cross the network
        ("postgresql://berth@127.0.0.1/berth", "file:///var/lib/berth/storage", False),
    ],
)
def test_uploads_run_on_the_loop_with_sqlite_and_the_filesystem_store_only(database, storage, on):
    assert uploads_inline(Settings(database_url=database, storage_url=storage)) is on
