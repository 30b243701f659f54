"""A refused push stores nothing (issue 15, point 6).

Every refusal on the push path, on a repository name never pushed before: afterwards the name
is not in `/v2/_catalog`, not in the browse tree, not in `/usage` (counts, rows, traffic), its
tag list is 404 NAME_UNKNOWN, and no repository row is left in the database. An upload session
still open keeps an (invisible) row until it ends or expires. Only the audit record of the
refused request itself remains. A repository appears once it holds something committed: a blob
from a finished upload or a mount, or a manifest.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time

import pytest
import requests

from tests.support.management import Api
from tests.support.registry_client import DOCKER_MANIFEST, OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import Server

TINY_LIMIT = 20_000
SKUS = [
    {
        "name": "standard",
        "title": "Standard",
        "included_bytes": 10 * 1024**3,
        "hard_limit_bytes": None,
        "default": True,
    },
    {"name": "tiny", "title": "Tiny", "included_bytes": 10_000, "hard_limit_bytes": TINY_LIMIT},
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("refused") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_SKUS": json.dumps(SKUS)},
    ).start()
    yield server
    server.stop()


@pytest.fixture
def api(srv) -> Api:
    return Api(srv)


@pytest.fixture
def client(srv) -> RegistryClient:
    return RegistryClient(srv.url, srv.session())


def fresh(prefix: str = "refused") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def repository_rows(srv: Server, registry: str, repository: str) -> int:
    """Rows the database holds for the repository, visible or not."""
    from app.db.models import Registry, Repository
    from app.db.setup import database_for

    db = database_for(srv.database_url or f"sqlite:///{srv.data_dir / 'berth.db'}")
    with db.bind_ctx([Registry, Repository]), db.connection_context():
        return (
            Repository.select()
            .join(Registry)
            .where((Registry.name == registry) & (Repository.name == repository))
            .count()
        )


def storage(api: Api, registry: str) -> dict:
    return api("GET", f"/registries/{registry}/usage").json()["storage"]


def assert_not_stored(
    srv: Server, api: Api, registry: str, repository: str, before: dict, session_open: bool = False
) -> None:
    """Nothing of `repository` shows anywhere; its row is gone unless an upload session is open."""
    c = RegistryClient(srv.url, srv.session())
    assert f"{registry}/{repository}" not in c.request("GET", "/v2/_catalog").json()["repositories"]
    tree = api("GET", f"/registries/{registry}/repositories").json()["entries"]
    assert repository not in {e["path"] for e in tree}
    assert api("GET", f"/registries/{registry}/repositories/{repository}").status_code == 404
    assert api("GET", f"/registries/{registry}/repositories/{repository}/tags").status_code == 404
    usage = api("GET", f"/registries/{registry}/usage").json()
    assert usage["storage"] == before
    assert repository not in {r["name"] for r in usage["repositories"]}
    assert [d for d in usage["days"] if d["repository"] == repository] == []
    r = c.request("GET", f"/v2/{registry}/{repository}/tags/list")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN", r.text
    assert repository_rows(srv, registry, repository) == (1 if session_open else 0)


def assert_visible(srv: Server, api: Api, registry: str, repository: str) -> None:
    c = RegistryClient(srv.url, srv.session())
    assert f"{registry}/{repository}" in c.request("GET", "/v2/_catalog").json()["repositories"]
    assert repository in {r["name"] for r in api("GET", f"/registries/{registry}/usage").json()["repositories"]}
    assert api("GET", f"/registries/{registry}/repositories/{repository}").status_code == 200
    assert c.request("GET", f"/v2/{registry}/{repository}/tags/list").status_code == 200


def manifest_for(config: bytes, layers: list[bytes], media_type: str = OCI_MANIFEST, **extra) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
                for layer in layers
            ],
            **extra,
        }
    ).encode()


# --- manifest PUT ---------------------------------------------------------------------------------

UNPUSHED = manifest_for(b'{"os": "linux"}', [b"a layer nobody pushed"])
MANIFEST_REFUSALS = {
    "not-json": (OCI_MANIFEST, b"{this is not json", None, 400, "MANIFEST_INVALID"),
    "unknown-content-type": ("application/vnd.example.thing+json", UNPUSHED, None, 400, "MANIFEST_INVALID"),
    "no-content-type": (None, UNPUSHED, None, 400, "MANIFEST_INVALID"),
    "content-type-contradicts-media-type": (DOCKER_MANIFEST, UNPUSHED, None, 400, "MANIFEST_INVALID"),
    "blobs-never-pushed": (OCI_MANIFEST, UNPUSHED, None, 400, "MANIFEST_BLOB_UNKNOWN"),
    "digest-the-body-does-not-have": (OCI_MANIFEST, UNPUSHED, sha256(b"other"), 400, "DIGEST_INVALID"),
    "too-large": (OCI_MANIFEST, b" " * (4 * 1024 * 1024 + 1), None, 413, "MANIFEST_INVALID"),
}


@pytest.mark.parametrize(
    "content_type,body,reference,status,code", MANIFEST_REFUSALS.values(), ids=MANIFEST_REFUSALS.keys()
)
def test_a_refused_manifest_push_stores_nothing_but_its_audit_record(
    srv, api, client, content_type, body, reference, status, code
):
    repo, before = fresh(), storage(api, "default")
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.request("PUT", f"/v2/default/{repo}/manifests/{reference or 'v1'}", data=body, headers=headers)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (status, code), r.text
    assert_not_stored(srv, api, "default", repo, before)
    events = api("GET", "/audit", params={"registry": "default", "action": "manifest"}).json()["events"]
    assert [e["outcome"] for e in events if e["repository"] == repo] == ["failure"]


def test_an_immutable_tag_refusal_stores_no_manifest_and_counts_no_push(srv, api, client):
    name = fresh("immutable")
    api.create(name, immutable_tags=["*"])
    digest, body, manifest = client.push_image(f"{name}/app", "v1")
    before, pushes = storage(api, name), api("GET", f"/registries/{name}/usage").json()["traffic"]["pushes"]
    other = json.dumps({**manifest, "annotations": {"again": "yes"}}).encode()  # the same blobs
    r = client.push_manifest(f"{name}/app", "v1", other)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    assert client.request("GET", f"/v2/{name}/app/manifests/{sha256(other)}").status_code == 404
    assert client.request("GET", f"/v2/{name}/app/manifests/v1").headers["Docker-Content-Digest"] == digest
    usage = api("GET", f"/registries/{name}/usage").json()
    assert usage["storage"] == before and usage["traffic"]["pushes"] == pushes


# --- who may push -----------------------------------------------------------------------------------


def test_an_unauthorized_or_denied_push_stores_nothing(srv, api):
    reader = api("POST", "/tokens", json={"name": fresh("ro"), "scope": "pull"}).json()["token"]
    for session, status in ((srv.session(token=None), 401), (srv.session(token=reader), 403)):
        c, repo, before = RegistryClient(srv.url, session), fresh(), storage(api, "default")
        data = os.urandom(500)
        assert (
            c.request(
                "POST", f"/v2/default/{repo}/blobs/uploads/", params={"digest": sha256(data)}, data=data
            ).status_code
            == status
        )
        assert c.request("POST", f"/v2/default/{repo}/blobs/uploads/").status_code == status
        assert c.push_manifest(f"default/{repo}", "v1", manifest_for(data, [])).status_code == status
        assert_not_stored(srv, api, "default", repo, before)


# --- blob uploads -----------------------------------------------------------------------------------


def test_a_monolithic_upload_with_the_wrong_digest_stores_nothing(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    r = client.request(
        "POST", f"/v2/default/{repo}/blobs/uploads/", params={"digest": sha256(b"not this")}, data=b"these bytes"
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID", r.text
    assert_not_stored(srv, api, "default", repo, before)


def test_a_chunked_upload_closed_with_the_wrong_digest_stores_nothing(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    location = client.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers["Location"]
    r = client.request("PATCH", location, data=b"chunk one", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    assert_not_stored(srv, api, "default", repo, before, session_open=True)  # in progress: not shown
    r = client.request("PUT", r.headers["Location"], params={"digest": sha256(b"something else")})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID", r.text
    assert_not_stored(srv, api, "default", repo, before)


def test_a_cancelled_upload_stores_nothing(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    location = client.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers["Location"]
    assert client.request("PATCH", location, data=b"partial").status_code == 202
    assert client.request("DELETE", location).status_code == 204
    assert_not_stored(srv, api, "default", repo, before)


def test_uploads_past_the_quota_store_nothing(srv, api, client):
    name = fresh("tiny")
    api.create(name, sku="tiny")
    repo, before, big = fresh(), storage(api, name), os.urandom(TINY_LIMIT + 1)
    # Monolithic: refused before a byte is stored.
    r = client.request("POST", f"/v2/{name}/{repo}/blobs/uploads/", params={"digest": sha256(big)}, data=big)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    assert_not_stored(srv, api, name, repo, before)
    # A chunk past the quota: the session stays open (and unseen) until it is cancelled.
    location = client.request("POST", f"/v2/{name}/{repo}/blobs/uploads/").headers["Location"]
    assert client.request("PATCH", location, data=big).status_code == 403
    assert_not_stored(srv, api, name, repo, before, session_open=True)
    assert client.request("DELETE", location).status_code == 204
    assert_not_stored(srv, api, name, repo, before)
    # The closing PUT past the quota cancels the upload.
    location = client.request("POST", f"/v2/{name}/{repo}/blobs/uploads/").headers["Location"]
    r = client.request("PATCH", location, data=big[: TINY_LIMIT // 2])
    assert r.status_code == 202, r.text
    r = client.request("PUT", r.headers["Location"], params={"digest": sha256(big)}, data=big[TINY_LIMIT // 2 :])
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
    assert_not_stored(srv, api, name, repo, before)


# --- cross-repository mounts --------------------------------------------------------------------


def test_a_mount_from_a_repository_that_does_not_exist_stores_nothing(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    r = client.request(
        "POST",
        f"/v2/default/{repo}/blobs/uploads/",
        params={"mount": sha256(b"nowhere"), "from": f"default/{fresh('missing')}"},
    )
    assert r.status_code == 202, r.text  # the spec's fallback: an ordinary upload session
    assert_not_stored(srv, api, "default", repo, before, session_open=True)
    assert client.request("DELETE", r.headers["Location"]).status_code == 204
    assert_not_stored(srv, api, "default", repo, before)


def test_a_mount_from_another_registry_stores_nothing(srv, api, client):
    other = fresh("other")
    api.create(other)
    data = os.urandom(300)
    client.push_blob(f"{other}/source", data)
    repo, before = fresh(), storage(api, "default")
    r = client.request(
        "POST", f"/v2/default/{repo}/blobs/uploads/", params={"mount": sha256(data), "from": f"{other}/source"}
    )
    assert r.status_code == 202, r.text
    assert client.request("DELETE", r.headers["Location"]).status_code == 204
    assert_not_stored(srv, api, "default", repo, before)


def test_a_mount_from_a_repository_the_token_may_not_read_stores_nothing(srv, api, client):
    data = os.urandom(400)
    source = fresh("source")
    client.push_blob(f"default/{source}", data)
    repo, before = fresh(), storage(api, "default")
    # A registry token that may push to the target but not pull from the source.
    token = requests.get(
        f"{srv.url}/auth/token",
        params={"service": srv.host, "scope": f"repository:default/{repo}:pull,push"},
        auth=("x", srv.token),
        timeout=10,
    )
    bearer = requests.Session()
    bearer.headers["Authorization"] = f"Bearer {token.json()['token']}"
    r = RegistryClient(srv.url, bearer).request(
        "POST", f"/v2/default/{repo}/blobs/uploads/", params={"mount": sha256(data), "from": f"default/{source}"}
    )
    assert r.status_code == 202, r.text
    assert client.request("HEAD", f"/v2/default/{repo}/blobs/{sha256(data)}").status_code == 404
    assert client.request("DELETE", r.headers["Location"]).status_code == 204
    assert_not_stored(srv, api, "default", repo, before)


def test_a_repository_appears_once_a_blob_is_uploaded_or_mounted(srv, api, client):
    repo = fresh()
    location = client.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers["Location"]
    assert repo not in {e["path"] for e in api("GET", "/registries/default/repositories").json()["entries"]}
    data = b"committed at last"
    assert client.request("PUT", location, params={"digest": sha256(data)}, data=data).status_code == 201
    assert_visible(srv, api, "default", repo)
    mounted = fresh()
    r = client.request(
        "POST", f"/v2/default/{mounted}/blobs/uploads/", params={"mount": sha256(data), "from": f"default/{repo}"}
    )
    assert r.status_code == 201, r.text
    assert_visible(srv, api, "default", mounted)


def test_a_repository_whose_only_blob_is_deleted_is_listed_no_more(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    digest = client.push_blob(f"default/{repo}", b"soon unlinked")
    assert_visible(srv, api, "default", repo)
    assert client.request("DELETE", f"/v2/default/{repo}/blobs/{digest}").status_code == 202
    c = RegistryClient(srv.url, srv.session())
    assert f"default/{repo}" not in c.request("GET", "/v2/_catalog").json()["repositories"]
    assert api("GET", f"/registries/default/repositories/{repo}").status_code == 404
    assert c.request("GET", f"/v2/default/{repo}/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert storage(api, "default")["repositories"] == before["repositories"]


# --- concurrency, expiry ---------------------------------------------------------------------------


def test_a_failing_push_never_removes_another_pushs_upload_or_repository(srv, api, client):
    repo, before = fresh(), storage(api, "default")
    location = client.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers["Location"]
    r = client.request("POST", f"/v2/default/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, data=b"y")
    assert r.status_code == 400
    assert_not_stored(srv, api, "default", repo, before, session_open=True)  # the first one's
    data = b"the first push goes on"
    assert client.request("PUT", location, params={"digest": sha256(data)}, data=data).status_code == 201
    r = client.request("POST", f"/v2/default/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, data=b"y")
    assert r.status_code == 400
    assert client.request("GET", f"/v2/default/{repo}/blobs/{sha256(data)}").content == data
    assert_visible(srv, api, "default", repo)


def test_pushes_racing_failing_pushes_on_new_repositories_all_land(srv, api):
    repos = [fresh("race") for _ in range(4)]
    failures: list[str] = []

    def good(repo: str, i: int) -> None:
        c = RegistryClient(srv.url, srv.session())
        try:
            digest, _, _ = c.push_image(f"default/{repo}", f"t{i}", layers=[os.urandom(100)])
            if c.request("GET", f"/v2/default/{repo}/manifests/{digest}").status_code != 200:
                failures.append(f"{repo} lost {digest}")
        except AssertionError as e:
            failures.append(f"{repo}: {e}")

    def bad(repo: str) -> None:
        c = RegistryClient(srv.url, srv.session())
        for _ in range(6):
            r = c.request("POST", f"/v2/default/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, data=b"y")
            location = c.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers.get("Location")
            d = c.request("DELETE", location) if location else None
            if r.status_code != 400 or d is None or d.status_code != 204:
                failures.append(f"{repo}: refusal answered {r.status_code}, cancel {d and d.status_code}")

    threads = [threading.Thread(target=bad, args=(repo,)) for repo in repos for _ in range(2)]
    threads += [threading.Thread(target=good, args=(repo, i)) for repo in repos for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    for repo in repos:
        assert_visible(srv, api, "default", repo)
        tags = RegistryClient(srv.url, srv.session()).request("GET", f"/v2/default/{repo}/tags/list").json()["tags"]
        assert sorted(tags) == ["t0", "t1", "t2"]


def test_an_expired_upload_takes_its_unseen_repository_with_it(tmp_path):
    srv = Server(
        tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_UPLOAD_EXPIRY": "1"}
    ).start()
    try:
        api, c = Api(srv), RegistryClient(srv.url, srv.session())
        kept, lost = fresh("kept"), fresh()
        c.push_blob(f"default/{kept}", b"committed")
        before = storage(api, "default")
        locations = []
        for repo in (kept, lost):
            locations.append(c.request("POST", f"/v2/default/{repo}/blobs/uploads/").headers["Location"])
            assert c.request("PATCH", locations[-1], data=b"never finished").status_code == 202
        # The server's upload reaper cancels them within a second or two (app/services/upload_expiry.py).
        deadline = time.monotonic() + 60
        while any(c.request("GET", location).status_code != 404 for location in locations):
            assert time.monotonic() < deadline, "the idle uploads were never expired"
            time.sleep(0.2)
        assert api("POST", "/registries/default/gc", json={}).json()["expired_uploads"] == 0  # none left
        assert_not_stored(srv, api, "default", lost, before)
        assert_visible(srv, api, "default", kept)
    finally:
        srv.stop()
