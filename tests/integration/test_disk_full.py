"""A full disk: the server's data directory on a small tmpfs the test mounts, filled by pushes.

Every push that finds no room gets a proper answer (507 STORAGE_FULL, never a dropped
connection or a 500), nothing half-written becomes visible, what was pushed before stays
readable, `/readyz` fails while free space is below BERTH_MIN_FREE_BYTES, and once space returns
pushes work again without a restart.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support import postgres
from tests.support.components import IN_CI
from tests.support.management import Api
from tests.support.registry_client import OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import Server

MiB = 1024 * 1024
DISK = 48 * MiB
MIN_FREE = 12 * MiB
REPO = "default/full"


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of DISK bytes (mounting needs root), unmounted after the test."""
    if os.geteuid() != 0:
        message = "mounting a small tmpfs needs root"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", "--lazy", str(mountpoint)], check=False)


@pytest.fixture
def server_on_small_disk(small_disk):
    # The data directory is the tmpfs itself, so the server's log (beside it) is not on it.
    server = Server(
        small_disk, token="berth_" + secrets.token_urlsafe(32), env={"BERTH_MIN_FREE_BYTES": str(MIN_FREE)}
    ).start()
    yield server
    server.stop()


class Pusher:
    """Pushes blobs every way a client does, recording each answer and each acknowledged blob."""

    def __init__(self, server: Server) -> None:
        self.client = RegistryClient(server.url, server.session())
        self.acknowledged: dict[str, bytes] = {}  # digest -> bytes, for every 201
        self.refused: list[str] = []  # digests of pushes answered 507
        self.statuses: list[int] = []

    def _answer(self, response: requests.Response) -> requests.Response:
        self.statuses.append(response.status_code)
        assert response.status_code < 500 or response.status_code == 507, (response.status_code, response.text)
        if response.status_code == 507:
            body = response.json()
            assert body["errors"][0]["code"] == "STORAGE_FULL", body
        return response

    def monolithic(self, size: int) -> int:
        """POST ?digest= with the whole blob (bodies past 1 MiB are spooled to disk first)."""
        data = secrets.token_bytes(size)
        r = self._answer(
            self.client.request(
                "POST",
                f"/v2/{REPO}/blobs/uploads/",
                params={"digest": sha256(data)},
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
        )
        self._record(r, data)
        return r.status_code

    def chunked(self, size: int, chunk: int = 2 * MiB) -> int:
        """POST, PATCH chunks, PUT: the answer of the first step that did not succeed, or 201."""
        data = secrets.token_bytes(size)
        r = self._answer(self.client.request("POST", f"/v2/{REPO}/blobs/uploads/"))
        if r.status_code != 202:
            return r.status_code
        location = r.headers["Location"]
        for start in range(0, size, chunk):
            piece = data[start : start + chunk]
            r = self._answer(
                self.client.request(
                    "PATCH",
                    location,
                    data=piece,
                    headers={
                        "Content-Range": f"{start}-{start + len(piece) - 1}",
                        "Content-Type": "application/octet-stream",
                    },
                )
            )
            if r.status_code != 202:
                self.refused.append(sha256(data))
                return r.status_code
            location = r.headers["Location"]
        r = self._answer(self.client.request("PUT", location, params={"digest": sha256(data)}))
        self._record(r, data)
        return r.status_code

    def streamed(self, size: int) -> int:
        """POST, one PATCH with `Transfer-Encoding: chunked` (as docker sends layers), PUT."""
        data = secrets.token_bytes(size)
        r = self._answer(self.client.request("POST", f"/v2/{REPO}/blobs/uploads/"))
        if r.status_code != 202:
            return r.status_code
        pieces = (data[i : i + 256 * 1024] for i in range(0, size, 256 * 1024))
        r = self._answer(
            self.client.request(
                "PATCH", r.headers["Location"], data=pieces, headers={"Content-Type": "application/octet-stream"}
            )
        )
        if r.status_code != 202:
            self.refused.append(sha256(data))
            return r.status_code
        r = self._answer(self.client.request("PUT", r.headers["Location"], params={"digest": sha256(data)}))
        self._record(r, data)
        return r.status_code

    def _record(self, response: requests.Response, data: bytes) -> None:
        if response.status_code == 201:
            self.acknowledged[sha256(data)] = data
        elif response.status_code == 507:
            self.refused.append(sha256(data))

    def assert_intact(self) -> None:
        """Every acknowledged blob reads back whole; no refused one is visible."""
        for digest in self.acknowledged:
            r = self.client.request("GET", f"/v2/{REPO}/blobs/{digest}")
            assert r.status_code == 200 and "sha256:" + hashlib.sha256(r.content).hexdigest() == digest
        for digest in self.refused:
            if digest not in self.acknowledged:
                assert self.client.request("HEAD", f"/v2/{REPO}/blobs/{digest}").status_code == 404


def _fill(path: Path) -> None:
    """Write `path` until the disk has not one byte left."""
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * MiB
        while block:
            try:
                f.write(block)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                block = block[: len(block) // 2]


def _ready(server: Server) -> int:
    return requests.get(server.url + "/readyz", timeout=30).status_code


def test_pushes_that_fill_the_disk_are_refused_with_507_and_nothing_acknowledged_is_lost(server_on_small_disk):
    server = server_on_small_disk
    pusher = Pusher(server)
    ballast = server.data_dir / "ballast"  # what the operator deletes to make room later
    ballast.write_bytes(b"\0" * (2 * MIN_FREE))
    assert _ready(server) == 200
    # Fill the disk by pushing: spooled and in-memory monolithic bodies, and chunked uploads.
    for _ in range(40):
        answers = {
            pusher.monolithic(3 * MiB),
            pusher.monolithic(300 * 1024),
            pusher.chunked(5 * MiB),
            pusher.streamed(4 * MiB),
        }
        if answers == {507}:
            break
    else:
        raise AssertionError(f"the disk never filled: {pusher.statuses}")
    assert len(pusher.acknowledged) >= 3, "some pushes fitted before the disk filled"
    assert _ready(server) == 503

    # Whatever room is left (less than any of those pushes needed) goes too: now the database
    # cannot grow either.
    _fill(server.data_dir / "filler")
    for _ in range(3):
        assert pusher.monolithic(3 * MiB) == 507
        assert pusher.monolithic(1024) == 507
        assert pusher.chunked(64 * 1024) == 507
        assert pusher.streamed(2 * MiB) == 507
    pusher.assert_intact()

    ballast.unlink()
    (server.data_dir / "filler").unlink()
    assert _ready(server) == 200
    assert pusher.monolithic(3 * MiB) == 201
    assert pusher.monolithic(1024) == 201
    assert pusher.chunked(5 * MiB) == 201
    assert pusher.streamed(4 * MiB) == 201
    pusher.assert_intact()


def test_pushes_work_again_without_a_restart_once_the_disk_is_made_bigger(server_on_small_disk, small_disk):
    server = server_on_small_disk
    pusher = Pusher(server)
    config, layer = b'{"architecture": "amd64", "os": "linux"}', secrets.token_bytes(2 * MiB)
    pusher.client.push_blob(REPO, config)
    pusher.client.push_blob(REPO, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": len(layer)}
        ],
    }
    _fill(server.data_dir / "filler")
    assert _ready(server) == 503
    assert pusher.monolithic(2 * MiB) == 507
    assert pusher.chunked(3 * MiB) == 507
    if not postgres.ALL_SERVERS_ON_POSTGRES:  # there, manifests go to a database with room
        # SQLite's write-ahead log may still have room inside its file (copied back and started
        # over by app/services/wal_checkpoints.py): a push that fits there is acknowledged and
        # kept. Once that room is spent, pushes are refused, and nothing refused is visible.
        stored = {}
        for i in range(3000):
            tagged = {**manifest, "annotations": {"n": str(i)}}
            r = pusher._answer(pusher.client.push_manifest(REPO, f"t{i}", tagged))
            if r.status_code == 507:
                break
            assert r.status_code == 201
            stored[f"t{i}"] = r.headers["Docker-Content-Digest"]
        else:
            raise AssertionError("the database never ran out of room")
        accept = {"Accept": OCI_MANIFEST}
        assert pusher.client.request("GET", f"/v2/{REPO}/manifests/t{i}", headers=accept).status_code == 404
        for tag, digest in stored.items():
            got = pusher.client.request("GET", f"/v2/{REPO}/manifests/{tag}", headers=accept)
            assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
        for j in range(100):  # the management API: problem JSON, once what little room is left is spent
            refused = Api(server)("POST", "/tokens", json={"name": f"ci{j}"})
            if refused.status_code != 201:
                break
        assert refused.status_code == 507 and refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["type"] == "https://berth.dev/problems/storage-full"

    subprocess.run(["mount", "-o", f"remount,size={4 * DISK}", str(small_disk)], check=True)
    assert _ready(server) == 200
    r = pusher._answer(pusher.client.push_manifest(REPO, "latest", manifest))
    assert r.status_code == 201
    assert pusher.monolithic(2 * MiB) == 201
    assert pusher.chunked(3 * MiB) == 201
    pusher.assert_intact()
    got = pusher.client.request("GET", f"/v2/{REPO}/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == r.headers["Docker-Content-Digest"]
    assert pusher.client.request("GET", f"/v2/{REPO}/blobs/{sha256(layer)}").content == layer
