"""Online garbage collection on a real server: what goes, what stays, and a collection racing
hundreds of concurrent pushes.

Some tests age content by writing old timestamps into the server's SQLite database while it
runs (the collector's grace period is measured from them); they skip when the suite runs every
server on PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import postgres
from tests.support.registry_client import OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import ROOT, Server

pytestmark = pytest.mark.skipif(postgres.ALL_SERVERS_ON_POSTGRES, reason="ages rows in the SQLite file directly")


@pytest.fixture
def srv(tmp_path):
    server = Server(
        tmp_path / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_GC_INTERVAL": "0", "BERTH_GC_GRACE": "15"},
    ).start()
    yield server
    server.stop()


def berth_gc(server: Server, *args: str) -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "gc", "--data-dir", str(server.data_dir), "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def age_everything(server: Server) -> None:
    """Make every blob and manifest look pushed and last touched long ago."""
    db = sqlite3.connect(server.data_dir / "berth.db", timeout=30)
    with db:
        db.execute("UPDATE blob SET created_at = '2020-01-01 00:00:00', touched_at = '2020-01-01 00:00:00'")
        db.execute("UPDATE manifest SET created_at = '2020-01-01 00:00:00'")
    db.close()


def stored_digests(server: Server, registry_id: int = 1) -> set[str]:
    root = server.data_dir / "storage" / "blobs" / str(registry_id)
    return {f"{p.parent.parent.name}:{p.name}" for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def reachable_blob_digests(client: RegistryClient, repos: list[str]) -> set[str]:
    """Every blob the tags of `repos` reach, read back through the registry."""
    wanted = set()
    for repo in repos:
        for tag in client.request("GET", f"/v2/{repo}/tags/list").json().get("tags") or []:
            wanted |= _blobs_of(client, repo, tag)
    return wanted


def _blobs_of(client: RegistryClient, repo: str, ref: str) -> set[str]:
    r = client.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    assert r.status_code == 200, (repo, ref, r.text)
    doc = r.json()
    if doc.get("mediaType") == OCI_INDEX:
        return set().union(*[_blobs_of(client, repo, m["digest"]) for m in doc["manifests"]])
    return {doc["config"]["digest"], *[layer["digest"] for layer in doc["layers"]]}


def test_collects_exactly_what_no_tag_reaches(srv):
    c = RegistryClient(srv.url, srv.session())
    shared = secrets.token_bytes(4000)
    a_only = secrets.token_bytes(3000)
    a, _, _ = c.push_image("default/gc/app", "v1", layers=[shared, a_only])
    c_digest, c_bytes, c_doc = c.push_image("default/gc/app", "v1", layers=[shared, b"c-layer"])  # moves v1
    sig_a = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/x.sig",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": c.push_blob("default/gc/app", b"{}"),
            "size": 2,
        },
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": a, "size": 1},
    }
    sig_a_bytes = json.dumps(sig_a).encode()
    assert c.push_manifest("default/gc/app", sha256(sig_a_bytes), sig_a_bytes).status_code == 201
    sig_c = {**sig_a, "subject": {"mediaType": OCI_MANIFEST, "digest": c_digest, "size": len(c_bytes)}}
    sig_c_bytes = json.dumps(sig_c).encode()
    assert c.push_manifest("default/gc/app", sha256(sig_c_bytes), sig_c_bytes).status_code == 201
    # A multi-platform image: children untagged, reachable through the tagged index.
    amd, amd_bytes, _ = c.push_image("default/gc/multi", None, layers=[b"amd"])
    arm, arm_bytes, _ = c.push_image("default/gc/multi", None, layers=[b"arm"])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": len(amd_bytes)},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": len(arm_bytes)},
        ],
    }
    assert c.push_manifest("default/gc/multi", "latest", index, OCI_INDEX).status_code == 201
    lonely = c.push_blob("default/gc/app", b"uploaded, never referenced")
    age_everything(srv)

    preview = berth_gc(srv, "--registry", "default", "--dry-run")[0]
    assert {m["digest"] for m in preview["manifests_deleted"]} == {a, sha256(sig_a_bytes)}
    assert {b["digest"] for b in preview["blobs_deleted"]} >= {sha256(a_only), lonely}
    assert c.request("GET", f"/v2/default/gc/app/manifests/{a}").status_code == 200  # a dry run deletes nothing

    done = berth_gc(srv, "--registry", "default")[0]
    assert done["manifests_deleted"] == preview["manifests_deleted"]
    # The signature's config blob ({}) is still referenced by the kept signature of C.
    assert {b["digest"] for b in done["blobs_deleted"]} == {sha256(a_only), lonely}
    assert c.request("GET", f"/v2/default/gc/app/manifests/{a}").status_code == 404
    assert c.request("HEAD", f"/v2/default/gc/app/blobs/{sha256(a_only)}").status_code == 404
    for kept in (c_digest, sha256(sig_c_bytes)):
        assert c.request("GET", f"/v2/default/gc/app/manifests/{kept}").status_code == 200
    for kept in (amd, arm):
        assert c.request("GET", f"/v2/default/gc/multi/manifests/{kept}").status_code == 200
    referrers = c.request("GET", f"/v2/default/gc/app/referrers/{c_digest}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [sha256(sig_c_bytes)]
    assert stored_digests(srv) == reachable_blob_digests(c, ["default/gc/app", "default/gc/multi"]) | {sha256(b"{}")}
    assert berth_gc(srv, "--registry", "default")[0]["blobs_deleted"] == []  # nothing left to do


def test_the_grace_period_protects_fresh_content(srv):
    c = RegistryClient(srv.url, srv.session())
    fresh = c.push_blob("default/gc/fresh", b"pushed a moment ago")
    digest, _, _ = c.push_image("default/gc/fresh", None, layers=[b"untagged but new"])
    report = berth_gc(srv, "--registry", "default")[0]  # the server's grace: 15 s
    assert fresh not in {b["digest"] for b in report["blobs_deleted"]}
    assert digest not in {m["digest"] for m in report["manifests_deleted"]}
    assert c.request("HEAD", f"/v2/default/gc/fresh/blobs/{fresh}").status_code == 200
    # Through the API, with the server's own grace period; a dry run by request.
    api = {"Authorization": f"Bearer {srv.token}"}
    r = requests.post(
        f"{srv.url}/api/v1/orgs/default/registries/default/gc", json={"dry_run": True}, headers=api, timeout=60
    )
    assert r.status_code == 200 and r.json()["dry_run"] is True and r.json()["blobs_deleted"] == []
    assert (
        requests.post(
            f"{srv.url}/api/v1/orgs/default/registries/default/gc", json={"dry_run": "yes"}, headers=api, timeout=60
        ).status_code
        == 400
    )


def test_collection_racing_hundreds_of_pushes_breaks_nothing(srv):
    """Garbage that pushes reuse (old, unreferenced blobs a client finds with HEAD and then
    names in its manifest) races a collection loop; every push must succeed and every tag stay
    whole. Afterwards, with no push in flight, a collection leaves exactly the reachable blobs."""
    c = RegistryClient(srv.url, srv.session())
    old_layers = [secrets.token_bytes(2048) for _ in range(40)]
    for i, layer in enumerate(old_layers):
        c.push_image("default/race/seed", f"s{i}", layers=[layer])
        assert c.request("DELETE", f"/v2/default/race/seed/manifests/s{i}").status_code == 202
    age_everything(srv)  # all of it is now garbage, and old

    stop = threading.Event()
    collections = []

    def collect_loop():
        api = {"Authorization": f"Bearer {srv.token}"}
        while not stop.is_set() or len(collections) < 2:  # at least one during and one after
            r = requests.post(f"{srv.url}/api/v1/orgs/default/registries/default/gc", headers=api, timeout=120)
            assert r.status_code == 200, r.text
            collections.append(r.json())

    def push(i: int) -> tuple[str, str]:
        client = RegistryClient(srv.url, srv.session())
        repo = f"default/race/app{i % 7}"
        layers = [old_layers[i % len(old_layers)], secrets.token_bytes(1024)]
        for layer in layers:  # what a real client does: check, upload only what is missing
            digest = sha256(layer)
            if client.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code != 200:
                mounted = client.request(
                    "POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": "default/race/seed"}
                )
                if mounted.status_code != 201:
                    client.push_blob(repo, layer)
        config = json.dumps({"os": "linux", "architecture": "amd64", "n": i}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": client.push_blob(repo, config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": len(layer)}
                for layer in layers
            ],
        }
        r = client.push_manifest(repo, f"t{i}", manifest)
        assert r.status_code == 201, r.text
        return repo, f"t{i}"

    collector = threading.Thread(target=collect_loop)
    collector.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            pushed = list(pool.map(push, range(300)))
    finally:
        stop.set()
        collector.join()
    assert len(pushed) == 300 and len(collections) >= 2
    assert sum(len(r["blobs_deleted"]) for r in collections) > 0, "the collector never collected anything"

    for repo, tag in pushed:  # every tag whole: manifest and every blob, bytes intact
        for digest in _blobs_of(c, repo, tag):
            r = c.request("GET", f"/v2/{repo}/blobs/{digest}")
            assert r.status_code == 200 and sha256(r.content) == digest, (repo, tag, digest)

    berth_gc(srv, "--registry", "default", "--grace", "0")  # nothing in flight now
    repos = sorted({repo for repo, _ in pushed})
    assert stored_digests(srv) == reachable_blob_digests(c, repos)
