"""A real `berth serve` on SQLite copies its write-ahead log back on a thread of its own
(app/services/wal_checkpoints.py): after a stream of pushes, none of which checkpoints on commit
(below 10,000 pages of log), the log is copied back into the database file within moments, with
no request asking for it, and every push is there. What has been copied is read from SQLite's
shared-memory index (`-shm`), as the server's own connections read it."""

from __future__ import annotations

import json
import secrets
import struct

import pytest

from tests.support.registry_client import RegistryClient
from tests.support.server import Server
from tests.support.waiting import until


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    yield s
    s.stop()


def log_state(data_dir) -> tuple[int, int]:
    """(frames in the log, frames copied back into the database file): the index header's
    `mxFrame` (offset 16) and the checkpoint info's `nBackfill` (offset 96), native byte order."""
    head = (data_dir / "berth.db-shm").read_bytes()[:100]
    return struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]


def test_the_log_is_copied_back_without_a_commit_doing_it(server):
    client = RegistryClient(server.url, server.session())
    _, body, _ = client.push_image("default/wal", "base")
    manifest = json.loads(body)
    for i in range(200):
        pushed = json.dumps({**manifest, "annotations": {"n": str(i)}}).encode()
        r = client.request(
            "PUT", f"/v2/default/wal/manifests/t{i}", data=pushed, headers={"Content-Type": manifest["mediaType"]}
        )
        assert r.status_code == 201, r.text
    frames, _ = log_state(server.data_dir)
    assert frames > 1_000  # past SQLite's own default, which would have checkpointed on commit
    until(lambda: (lambda s: s[1] == s[0])(log_state(server.data_dir)), seconds=5, what="the log copied back")
    assert len(client.request("GET", "/v2/default/wal/tags/list?n=1000").json()["tags"]) == 201
