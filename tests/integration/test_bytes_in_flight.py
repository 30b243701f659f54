"""Bytes in flight are bounded and reaped, on real servers (issue 16, points 6 and 9).

Unfinished uploads once escaped quotas (30 never-finished 9 MiB uploads under a 10 MiB hard limit
were all accepted, and kept a day) and request bodies spooled by a `kill -9`-ed process stayed on
disk for a day. Now: the bytes a registry's open upload sessions hold count against its hard
limit; a registry has a cap on open sessions; an idle session expires while the server runs
(not only at the hourly collection); and a running server removes the spool directory of a
process that died, while leaving a live one's alone.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from pathlib import Path

import pytest

from tests.integration.test_refused_pushes import repository_rows
from tests.support.management import Api
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import Server

MiB = 1024 * 1024
SKUS = [
    {
        "name": "standard",
        "title": "Standard",
        "included_bytes": 10 * 1024**3,
        "hard_limit_bytes": None,
        "default": True,
    },
    {"name": "ten", "title": "Ten MiB", "included_bytes": 10 * MiB, "hard_limit_bytes": 10 * MiB},
]
SESSION_CAP = 3


def token() -> str:
    return "berth_" + secrets.token_urlsafe(32)


def fresh(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("inflight") / "data",
        token=token(),
        env={"BERTH_SKUS": json.dumps(SKUS), "BERTH_MAX_UPLOAD_SESSIONS": str(SESSION_CAP)},
    ).start()
    yield server
    server.stop()


def start_upload(c: RegistryClient, repo: str):
    return c.request("POST", f"/v2/{repo}/blobs/uploads/")


def patch(c: RegistryClient, location: str, data: bytes):
    return c.request("PATCH", location, data=data, headers={"Content-Type": "application/octet-stream"})


def error_of(r) -> dict:
    return r.json()["errors"][0]


def upload_files(server: Server) -> list[Path]:
    return [p for p in (server.data_dir / "storage" / "uploads").iterdir() if not p.name.endswith(".lock")]


# --- quotas hold for bytes in flight --------------------------------------------------------------


def test_unfinished_uploads_count_against_the_hard_limit(srv):
    name = fresh("ten")
    Api(srv).create(name, sku="ten")
    c = RegistryClient(srv.url, srv.session())
    held = start_upload(c, f"{name}/app").headers["Location"]
    assert patch(c, held, b"\1" * (9 * MiB)).status_code == 202  # 9 of 10 MiB, never finished
    # A second unfinished upload, a chunk or a monolithic push past what is left: refused.
    other = start_upload(c, f"{name}/app").headers["Location"]
    r = patch(c, other, b"\2" * (2 * MiB))
    assert r.status_code == 403 and error_of(r)["code"] == "DENIED", r.text
    assert "storage quota exceeded" in error_of(r)["message"] and "unfinished uploads" in error_of(r)["message"]
    assert error_of(r)["detail"]["uploading_bytes"] == 9 * MiB
    small = b"\3" * (2 * MiB)
    r = c.request("POST", f"/v2/{name}/app/blobs/uploads/", params={"digest": sha256(small)}, data=small)
    assert r.status_code == 403 and error_of(r)["code"] == "DENIED", r.text
    # What fits still goes in; cancelling the big session gives its bytes back.
    assert patch(c, other, b"\2" * MiB).status_code == 202
    assert c.request("DELETE", held).status_code == 204
    assert patch(c, other, b"\2" * (8 * MiB)).status_code == 202
    r = c.request("PUT", other, params={"digest": sha256(b"\2" * (9 * MiB))})
    assert r.status_code == 201, r.text


def test_thirty_never_finished_uploads_cannot_fill_the_disk_past_the_limit(srv):
    name = fresh("ten")
    Api(srv).create(name, sku="ten")
    c = RegistryClient(srv.url, srv.session())
    before = sum(p.stat().st_size for p in upload_files(srv))
    accepted = 0
    for i in range(30):
        location = start_upload(c, f"{name}/r{i}")
        if location.status_code != 202:  # the session cap: it is reached first here
            assert location.status_code == 429, location.text
            break
        r = patch(c, location.headers["Location"], b"\4" * (4 * MiB))
        assert r.status_code in (202, 403), r.text
        accepted += r.status_code == 202
    assert accepted == 2  # 8 of 10 MiB held; every other 4 MiB chunk was refused before it was stored
    assert sum(p.stat().st_size for p in upload_files(srv)) - before == 8 * MiB


# --- the cap on open sessions ---------------------------------------------------------------------


def test_a_registry_refuses_upload_sessions_past_its_cap_until_one_ends(srv):
    name, other = fresh("capped"), fresh("uncapped")
    api = Api(srv)
    api.create(name)
    api.create(other)
    c = RegistryClient(srv.url, srv.session())
    locations = [start_upload(c, f"{name}/app").headers["Location"] for _ in range(SESSION_CAP)]
    r = start_upload(c, f"{name}/other")
    assert r.status_code == 429 and error_of(r)["code"] == "TOOMANYREQUESTS", r.text
    assert int(r.headers["Retry-After"]) > 0
    assert f"{SESSION_CAP} unfinished uploads" in error_of(r)["message"]
    assert repository_rows(srv, name, "other") == 0  # the refusal left nothing behind
    # Per registry; and a monolithic push opens no lasting session, so it is not refused.
    assert start_upload(c, f"{other}/app").status_code == 202
    c.push_blob(f"{name}/app", b"monolithic still works")
    assert c.request("DELETE", locations[0]).status_code == 204
    assert start_upload(c, f"{name}/other").status_code == 202


# --- abandoned uploads expire while the server runs -----------------------------------------------


def test_an_abandoned_upload_is_reaped_while_the_server_runs_and_gives_its_quota_back(tmp_path):
    # No background garbage collection: only the upload reaper can expire the session.
    srv = Server(
        tmp_path / "data",
        token=token(),
        env={"BERTH_SKUS": json.dumps(SKUS), "BERTH_UPLOAD_EXPIRY": "2", "BERTH_GC_INTERVAL": "0"},
    ).start()
    try:
        name, repo = fresh("ten"), fresh("abandoned")
        Api(srv).create(name, sku="ten")
        c = RegistryClient(srv.url, srv.session())
        abandoned = start_upload(c, f"{name}/{repo}").headers["Location"]
        assert patch(c, abandoned, b"\5" * (9 * MiB)).status_code == 202
        assert repository_rows(srv, name, repo) == 1 and upload_files(srv)

        deadline = time.monotonic() + 60
        while c.request("GET", abandoned).status_code != 404:
            assert time.monotonic() < deadline, "the idle upload was never reaped"
            time.sleep(0.2)
        assert error_of(c.request("GET", abandoned))["code"] == "BLOB_UPLOAD_UNKNOWN"
        # The reaper removes the session's row first, then its bytes and the repository row only it
        # kept: those follow within the same pass.
        while upload_files(srv) or repository_rows(srv, name, repo):
            assert time.monotonic() < deadline, "the session's bytes or repository row outlived it"
            time.sleep(0.1)
        later = start_upload(c, f"{name}/later").headers["Location"]
        assert patch(c, later, b"\6" * (9 * MiB)).status_code == 202  # its quota is free again
    finally:
        srv.stop()


# --- spool files of dead processes ----------------------------------------------------------------


def begin_body(server: Server, size: int, sent: int) -> socket.socket:
    """An authorized monolithic upload of `size` bytes of which only `sent` are sent: the rest
    never comes, so the server holds the body in its spool."""
    digest = sha256(b"\0" * size)
    auth = base64.b64encode(f"admin:{server.token}".encode()).decode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"POST /v2/default/spooled/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
            f"Host: {server.host}\r\nAuthorization: Basic {auth}\r\nContent-Length: {size}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    sock.sendall(b"\0" * sent)
    return sock


def spooled_bodies(spool: Path, at_least: int = 0) -> list[Path]:
    found = []
    for path in spool.rglob("body-*"):
        try:
            if path.stat().st_size >= at_least:
                found.append(path)
        except FileNotFoundError:
            pass
    return found


def test_spool_files_of_a_killed_server_are_reaped_by_a_running_one_sharing_the_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    env = {"BERTH_SPOOL_SWEEP_INTERVAL": "1"}
    doomed = Server(data_dir, token=token(), env=env).start()
    survivor = Server(data_dir, token=doomed.token, env=env, database_url=doomed.database_url).start()
    spool = data_dir / "storage" / "spool"
    sock = begin_body(doomed, 64 * MiB, 8 * MiB)
    try:
        deadline = time.monotonic() + 60
        while not spooled_bodies(spool, at_least=4 * MiB):
            assert time.monotonic() < deadline, "the body was never spooled"
            time.sleep(0.05)
        [body] = spooled_bodies(spool, at_least=4 * MiB)
        time.sleep(3)  # three sweeps of the survivor: a live process's body is never touched
        assert body.exists()

        doomed.kill()
        deadline = time.monotonic() + 60
        while body.exists() or body.parent.exists():
            assert time.monotonic() < deadline, f"{body} of the killed server was never reaped"
            time.sleep(0.2)
        assert len([d for d in spool.iterdir() if d.is_dir()]) == 1  # the survivor's own

        c = RegistryClient(survivor.url, survivor.session())
        data = secrets.token_bytes(3 * MiB)  # spooled by the survivor, and cleaned up after
        c.push_blob("default/spooled", data)
        assert c.request("GET", f"/v2/default/spooled/blobs/{sha256(data)}").content == data
        assert spooled_bodies(spool) == []
    finally:
        sock.close()
        doomed.kill()
        survivor.stop()
