"""The management API on a real server: registry lifecycle, browsing, credentials, audit,
idempotency and the problem-JSON conventions."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.components import require_tool
from tests.support.management import Api, walk_blobs
from tests.support.registry_client import OCI_INDEX, RegistryClient, sha256
from tests.support.server import Server


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("mgmt") / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(env) -> Api:
    return Api(env)


def client(env, token: str | None = None) -> RegistryClient:
    return RegistryClient(env.url, env.session(token or "default"))


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


# --- registries ------------------------------------------------------------------------------


def test_create_answers_202_and_the_worker_makes_it_ready(env, api):
    name = unique("life")
    r = api("POST", "/registries", json={"name": name, "visibility": "private", "pull_namespaces": ["apps"]})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "provisioning" and r.headers["Location"].endswith(f"/registries/{name}")
    op = api.wait(body["operation"])
    assert op["state"] == "succeeded" and [s["state"] for s in op["steps"]] == ["succeeded", "succeeded"]
    assert any("step provision: done" in line for line in op["log"])
    shown = api("GET", f"/registries/{name}").json()
    assert shown["status"] == "ready"
    assert shown["endpoint"] == f"{name}.registry.localhost" and shown["path_endpoint"] == f"{env.host}/{name}"
    assert shown["created_by"] == "token:1" and shown["pull_namespaces"] == ["apps"]
    # The embedded default provisioner rendered the registry's Kubernetes footprint as YAML.
    rendered = list((env.data_dir / "manifests" / name).glob("*.yaml"))
    assert rendered, "the local provisioner wrote no manifests"
    # The pull token it made for the pull Secret is never shown in the operation's log.
    assert not any("berth_" in line for line in op["log"])


def test_usage_counts_each_blob_once(env, api):
    name = unique("usage")
    api.create(name)
    c = client(env)
    shared = secrets.token_bytes(3000)
    c.push_image(f"{name}/a", "v1", layers=[shared, secrets.token_bytes(100)])
    c.push_image(f"{name}/b", "v1", layers=[shared])  # the same layer in a second repository
    c.push_image(f"{name}/b", "v2", layers=[shared])
    usage = api("GET", f"/registries/{name}").json()["usage"]
    registry_id = _registry_id(env, name)
    on_disk = walk_blobs(env.data_dir, registry_id)
    assert usage["stored_bytes"] == sum(p.stat().st_size for p in on_disk)
    assert usage["blobs"] == len(on_disk)
    assert usage["repositories"] == 2 and usage["tags"] == 3


def _registry_id(env, name: str) -> int:
    # The storage key prefix of a registry is its id; the one way to see it from outside is
    # the files of a blob we know.
    data = b"probe-" + name.encode()
    c = client(env)
    digest = c.push_blob(f"{name}/probe", data)
    hits = list((env.data_dir / "storage" / "blobs").glob(f"*/sha256/{digest[7:9]}/{digest[7:]}"))
    assert len(hits) == 1
    c.request("DELETE", f"/v2/{name}/probe/blobs/{digest}")
    hits[0].unlink(missing_ok=True)
    return int(hits[0].relative_to(env.data_dir / "storage" / "blobs").parts[0])


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "required"),
        ("a" * 64, "at most 63"),
        ("Bad_Name", "DNS label"),
        ("-dash", "DNS label"),
        ("v2", "reserved"),
        ("api", "reserved"),
    ],
)
def test_invalid_names_are_refused_naming_the_field(api, name, reason):
    r = api("POST", "/registries", json={"name": name})
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == "https://berth.dev/problems/invalid"
    assert problem["invalid_params"][0]["name"] == "name" and reason in problem["detail"]


def test_a_taken_name_is_a_conflict_across_organizations(env, api):
    name = unique("taken")
    api.create(name)
    r = api("POST", "/registries", json={"name": name})
    assert r.status_code == 409 and r.json()["type"] == "https://berth.dev/problems/conflict"
    assert r.json()["invalid_params"][0]["name"] == "name"


def test_unknown_fields_and_bad_json_are_named(api):
    r = api("POST", "/registries", json={"name": unique("x"), "visiblity": "public"})
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "visiblity"
    r = api("POST", "/registries", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = api("PATCH", "/registries/default", json={"visibility": "sideways"})
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "visibility"


def test_patch_visibility_opens_anonymous_pulls(env, api):
    name = unique("vis")
    api.create(name)
    client(env).push_image(f"{name}/app", "v1")
    anonymous = RegistryClient(env.url, requests.Session())
    assert anonymous.request("GET", f"/v2/{name}/app/manifests/v1").status_code == 401
    r = api("PATCH", f"/registries/{name}", json={"visibility": "public"})
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    assert anonymous.request("GET", f"/v2/{name}/app/manifests/v1").status_code == 200
    assert api("PATCH", f"/registries/{name}", json={"name": "renamed"}).status_code == 400


def test_delete_cascades_and_the_name_can_be_reused(env, api):
    name = unique("gone")
    api.create(name)
    c = client(env)
    c.push_image(f"{name}/app", "v1", layers=[secrets.token_bytes(5000)])
    upload = c.request("POST", f"/v2/{name}/app/blobs/uploads/").headers["Location"]
    assert c.request("PATCH", upload, data=b"partial").status_code == 202
    registry_id = _registry_id(env, name)
    assert walk_blobs(env.data_dir, registry_id)
    scoped = api("POST", f"/registries/{name}/credentials", json={"push": True}).json()

    r = api("DELETE", f"/registries/{name}")
    assert r.status_code == 202
    # Marked at once: the data plane stops answering for it before the worker is done.
    op = api.wait(r.json()["operation"])
    assert op["state"] == "succeeded", op
    assert [s["name"] for s in op["steps"]] == ["destroy", "delete_uploads", "delete_blobs", "delete_metadata"]
    assert api("GET", f"/registries/{name}").status_code == 404
    r = c.request("GET", f"/v2/{name}/app/manifests/v1")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert walk_blobs(env.data_dir, registry_id) == []
    assert not (env.data_dir / "manifests" / name).exists()
    assert not list((env.data_dir / "storage" / "uploads").glob(upload.rsplit("/", 1)[-1] + "*"))
    # Deleting again: it is gone.
    assert api("DELETE", f"/registries/{name}").status_code == 404

    api.create(name)  # the same name again, with nothing left over
    assert c.request("GET", f"/v2/{name}/app/manifests/v1").status_code == 404
    assert c.request("GET", f"/v2/{name}/app/tags/list").json().get("tags") in (None, [])
    assert api("GET", f"/registries/{name}").json()["usage"]["stored_bytes"] == 0
    # The old registry's credentials died with it.
    stale = RegistryClient(env.url, env.session(scoped["password"]))
    assert stale.request("GET", f"/v2/{name}/app/tags/list").status_code == 401


def test_two_deletes_return_one_operation(env, api):
    name = unique("twice")
    api.create(name)
    first = api("DELETE", f"/registries/{name}")
    second = api("DELETE", f"/registries/{name}")
    assert first.status_code == 202
    if second.status_code == 202:  # still in progress: the same operation
        assert second.json()["operation"]["id"] == first.json()["operation"]["id"]
    else:  # already finished
        assert second.status_code == 404
    assert api.wait(first.json()["operation"])["state"] == "succeeded"


def test_organizations_hold_several_registries_listed_with_cursor_pages(api):
    names = sorted(unique("many") for _ in range(5))
    for n in names:
        api.create(n)
    seen, url = [], "/registries?limit=2"
    while url:
        r = api("GET", url)
        assert r.status_code == 200
        seen += [reg["name"] for reg in r.json()["registries"]]
        cursor = r.json()["next_cursor"]
        url = f"/registries?limit=2&cursor={cursor}" if cursor else None
        if cursor:
            assert 'rel="next"' in r.headers["Link"]
    assert seen == sorted(seen) and set(names) <= set(seen) and len(seen) == len(set(seen))
    assert api("GET", "/registries?cursor=%%%").status_code == 400
    assert api("GET", "/registries?limit=0").json()["invalid_params"][0]["name"] == "limit"


def test_private_names_do_not_leak(env, api):
    other = subprocess.run(
        [sys.executable, "-m", "app.cli", "admin", "org", "create", unique("org"), "--data-dir", str(env.data_dir)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert other.returncode == 0, other.stderr
    stranger = Api(env, other.stdout.strip())
    for suffix in ("/registries", "/registries/default", "/registries/default/repositories", "/audit"):
        a = stranger("GET", f"/api/v1/orgs/default{suffix}")
        b = stranger("GET", f"/api/v1/orgs/nosuchorg{suffix}")
        assert a.status_code == b.status_code == 404
        assert a.json()["detail"].replace("'default'", "X") == b.json()["detail"].replace("'nosuchorg'", "X")
    # A token scoped to one registry cannot tell another registry from a missing one.
    scoped = Api(
        env, api("POST", "/tokens", json={"name": unique("s"), "scope": "pull", "registry": "default"}).json()["token"]
    )
    assert scoped("GET", "/registries/default").status_code == 200
    name = unique("hidden")
    api.create(name)
    a, b = scoped("GET", f"/registries/{name}"), scoped("GET", "/registries/nosuchregistry")
    assert a.status_code == b.status_code == 404


# --- browsing --------------------------------------------------------------------------------


def test_repositories_as_a_folder_tree(env, api):
    name = unique("tree")
    api.create(name)
    c = client(env)
    for repo in ("team/app/api", "team/app", "team/web", "solo"):
        c.push_image(f"{name}/{repo}", "v1", layers=[repo.encode() * 100])
    root = api("GET", f"/registries/{name}/repositories").json()
    assert [(e["type"], e["path"]) for e in root["entries"]] == [("repository", "solo"), ("folder", "team/")]
    assert root["entries"][1]["repositories"] == 3
    team = api("GET", f"/registries/{name}/repositories", params={"path": "team/"}).json()
    assert [(e["type"], e["path"]) for e in team["entries"]] == [
        ("repository", "team/app"),
        ("folder", "team/app/"),
        ("repository", "team/web"),
    ]
    app = team["entries"][0]
    assert app["tags"] == 1 and app["size"] > 300 and app["last_push"].endswith("Z")
    deeper = api("GET", f"/registries/{name}/repositories", params={"path": "team/app/"}).json()
    assert [e["path"] for e in deeper["entries"]] == ["team/app/api"]
    assert api("GET", f"/registries/{name}/repositories", params={"path": "nothing/"}).status_code == 404
    one = api("GET", f"/registries/{name}/repositories/team/app").json()
    assert one["name"] == "team/app" and one["tags"] == 1


def test_tags_with_sizes_platforms_and_manifest_detail(env, api):
    name = unique("tags")
    api.create(name)
    c = client(env)
    repo = f"{name}/multi"
    layers_amd, layers_arm = [secrets.token_bytes(1000), secrets.token_bytes(2000)], [secrets.token_bytes(3000)]
    amd_digest, amd_bytes, amd = c.push_image(repo, None, layers=layers_amd)
    arm_digest, arm_bytes, arm = c.push_image(repo, None, layers=layers_arm)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": amd["mediaType"],
                "digest": amd_digest,
                "size": len(amd_bytes),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": arm["mediaType"],
                "digest": arm_digest,
                "size": len(arm_bytes),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    assert c.push_manifest(repo, "latest", index, OCI_INDEX).status_code == 201
    assert c.push_manifest(repo, "amd", amd_bytes).status_code == 201

    def image_size(m):
        return m["config"]["size"] + sum(layer["size"] for layer in m["layers"])

    tags = {t["name"]: t for t in api("GET", f"/registries/{name}/repositories/multi/tags").json()["tags"]}
    assert tags["amd"]["size"] == image_size(amd) and tags["amd"]["platforms"] == []
    latest = tags["latest"]
    assert latest["media_type"] == OCI_INDEX and latest["digest"] == sha256(json.dumps(index).encode())
    by_platform = {p["platform"]: p["size"] for p in latest["platforms"]}
    assert by_platform == {"linux/amd64": image_size(amd), "linux/arm64/v8": image_size(arm)}
    # The config blob is identical in both images: the total counts it once.
    assert latest["size"] == image_size(amd) + image_size(arm) - amd["config"]["size"]
    assert latest["pushed_at"].endswith("Z")

    detail = api("GET", f"/registries/{name}/repositories/multi/manifests/{amd_digest}").json()
    assert [layer["digest"] for layer in detail["layers"]] == [d["digest"] for d in amd["layers"]]
    assert detail["config"]["digest"] == amd["config"]["digest"]
    assert detail["config"]["image"]["os"] == "linux" and detail["config"]["image"]["architecture"] == "amd64"
    assert detail["tags"] == ["amd"]
    encoded = api("GET", f"/registries/{name}/repositories/multi%2Fnope/tags")
    assert encoded.status_code == 404
    assert api("GET", f"/registries/{name}/repositories/multi/manifests/latest").status_code == 400


def test_manifest_detail_lists_its_referrers_and_only_its_own(env, api):
    name = unique("refs")
    api.create(name)
    c = client(env)
    subject_digest, subject_bytes, subject = c.push_image(f"{name}/app", "v1", layers=[secrets.token_bytes(100)])
    other_digest, _, _ = c.push_image(f"{name}/app", "v2", layers=[secrets.token_bytes(100)])
    pointer = {"mediaType": subject["mediaType"], "digest": subject_digest, "size": len(subject_bytes)}
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    sbom_digest, sbom_bytes, _ = c.push_image(
        f"{name}/app",
        None,
        layers=[sbom],
        subject=pointer,
        artifactType="application/spdx+json",
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    )
    signature_digest, signature_bytes, _ = c.push_image(
        f"{name}/app",
        None,
        layers=[b"a signature"],
        subject=pointer,
        artifactType="application/vnd.dev.cosign.artifact.sig.v1+json",
    )
    c.push_image(
        f"{name}/app",
        None,
        layers=[b"about v2"],
        artifactType="application/spdx+json",
        subject={**pointer, "digest": other_digest},
    )

    detail = api("GET", f"/registries/{name}/repositories/app/manifests/{subject_digest}").json()
    referrers = {r["digest"]: r for r in detail["referrers"]}
    assert set(referrers) == {sbom_digest, signature_digest}
    assert referrers[sbom_digest] == {
        "digest": sbom_digest,
        "media_type": subject["mediaType"],
        "artifact_type": "application/spdx+json",
        "size": len(sbom_bytes),
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    assert referrers[signature_digest]["artifact_type"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert referrers[signature_digest]["size"] == len(signature_bytes)
    # The referrer's own detail names its subject and has no referrers of its own.
    sbom_detail = api("GET", f"/registries/{name}/repositories/app/manifests/{sbom_digest}").json()
    assert sbom_detail["subject"] == subject_digest and sbom_detail["referrers"] == []


def test_tag_pages_are_stable_under_concurrent_pushes(env, api):
    name = unique("pages")
    api.create(name)
    c = client(env)
    digest, body, _ = c.push_image(f"{name}/busy", "t000")
    before = [f"t{i:03d}" for i in range(0, 60, 2)]
    for tag in before[1:]:
        assert c.push_manifest(f"{name}/busy", tag, body).status_code == 201
    stop = threading.Event()

    def pusher():
        i = 1
        while not stop.is_set() and i < 60:
            c2 = client(env)
            c2.push_manifest(f"{name}/busy", f"t{i:03d}", body)
            i += 2

    thread = threading.Thread(target=pusher)
    thread.start()
    seen, cursor = [], None
    try:
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = api("GET", f"/registries/{name}/repositories/busy/tags", params=params).json()
            seen += [t["name"] for t in page["tags"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
    finally:
        stop.set()
        thread.join()
    assert len(seen) == len(set(seen)), "a tag was returned twice"
    assert set(before) <= set(seen), "a tag that existed throughout was skipped"
    assert seen == sorted(seen)


# --- credentials -----------------------------------------------------------------------------


def test_credentials_dockerconfigjson_pulls_with_skopeo(env, api, tmp_path):
    require_tool("skopeo", "apt-get install skopeo (scripts/test does)")
    name = unique("creds")
    api.create(name)
    c = client(env)
    c.push_image(f"{name}/app", "v1", layers=[secrets.token_bytes(2000)])
    r = api(
        "POST",
        f"/registries/{name}/credentials",
        json={"k8s_secret_name": "app-pull", "namespace": "apps", "expires_in": "1d"},
    )
    assert r.status_code == 201, r.text
    creds = r.json()
    # No domain configured: the path form, which works here, comes first (docker login's server).
    assert creds["servers"] == [env.host, f"{name}.registry.localhost"]
    assert creds["token"]["expires_at"] and creds["token"]["registry"] == name
    secret = creds["kubernetes_secret"]
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and secret["metadata"] == {
        "name": "app-pull",
        "namespace": "apps",
        "labels": {"app.kubernetes.io/managed-by": "berth"},
    }
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config == creds["dockerconfigjson"]
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps(config))
    pulled = subprocess.run(
        [
            "skopeo",
            "copy",
            "--authfile",
            str(authfile),
            "--src-tls-verify=false",
            f"docker://{env.host}/{name}/app:v1",
            f"oci:{tmp_path / 'out'}:v1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    # Pull-only: the same credentials cannot push.
    pushed = subprocess.run(
        [
            "skopeo",
            "copy",
            "--authfile",
            str(authfile),
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'out'}:v1",
            f"docker://{env.host}/{name}/app:v2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode != 0
    # ... and reach no other registry.
    other = RegistryClient(env.url, env.session(creds["password"]))
    assert other.request("GET", "/v2/default/anything/tags/list").status_code in (401, 403, 404)


def test_push_credentials_only_for_callers_who_may_push(env, api):
    name = unique("pushc")
    api.create(name)
    push = api("POST", f"/registries/{name}/credentials", json={"push": True}).json()
    c = RegistryClient(env.url, env.session(push["password"]))
    c.push_image(f"{name}/app", "v1")
    reader = api("POST", "/tokens", json={"name": unique("reader"), "scope": "pull"}).json()["token"]
    r = Api(env, reader)("POST", f"/registries/{name}/credentials", json={"push": True})
    assert r.status_code == 403 and r.json()["code"] == "DENIED"
    assert Api(env, reader)("POST", f"/registries/{name}/credentials", json={}).status_code == 201
    assert (
        api("POST", f"/registries/{name}/credentials", json={"push": "yes"}).json()["invalid_params"][0]["name"]
        == "push"
    )


# --- audit -----------------------------------------------------------------------------------


def test_audit_records_management_and_data_plane_actions(env, api):
    name = unique("aud")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    api.create(name)
    c = client(env)
    first, _, _ = c.push_image(f"{name}/app", "v1")
    second, _, _ = c.push_image(f"{name}/app", "v1", layers=[b"other"])  # moves the tag
    assert c.request("DELETE", f"/v2/{name}/app/manifests/{first}").status_code == 202
    r = api("DELETE", f"/registries/{name}")
    api.wait(r.json()["operation"])

    events = api("GET", "/audit", params={"registry": name, "since": start}).json()["events"]
    actions = [e["action"] for e in reversed(events)]
    assert actions[0] == "registry.create" and actions[-1] == "registry.delete"
    assert {"manifest.push", "tag.overwrite", "manifest.delete"} <= set(actions)
    overwrite = next(e for e in events if e["action"] == "tag.overwrite")
    assert overwrite["detail"]["previous_digest"] == first and overwrite["digest"] == second
    assert overwrite["repository"] == "app" and overwrite["tag"] == "v1"
    for e in events:
        assert e["actor"] == "token:1" and e["outcome"] == "success" and e["client_ip"] == "127.0.0.1"
        assert e["request_id"] and e["registry"] == name
    # Filters: action prefix, actor, time window; and the records outlived the registry.
    only = api("GET", "/audit", params={"registry": name, "action": "registry"}).json()["events"]
    assert {e["action"] for e in only} == {"registry.create", "registry.delete"}
    assert api("GET", "/audit", params={"registry": name, "actor": "nobody"}).json()["events"] == []
    assert api("GET", "/audit", params={"registry": name, "until": start}).json()["events"] == []
    assert api("GET", "/audit", params={"since": "yesterday"}).json()["invalid_params"][0]["name"] == "since"
    page = api("GET", "/audit", params={"registry": name, "limit": 2})
    assert len(page.json()["events"]) == 2 and page.json()["next_cursor"]
    rest = api("GET", "/audit", params={"registry": name, "limit": 100, "cursor": page.json()["next_cursor"]})
    assert len(rest.json()["events"]) == len(events) - 2


def test_audit_records_denied_and_failed_attempts(env, api):
    reader = api("POST", "/tokens", json={"name": unique("ro"), "scope": "pull"}).json()
    as_reader = Api(env, reader["token"])
    assert as_reader("POST", "/registries", json={"name": unique("no")}).status_code == 403
    assert api("POST", "/registries", json={"name": "API"}).status_code == 400
    events = api("GET", "/audit", params={"action": "registry.create", "limit": 10}).json()["events"]
    outcomes = {(e["actor"], e["outcome"]) for e in events}
    assert (f"token:{reader['id']}", "denied") in outcomes and ("token:1", "failure") in outcomes


# --- idempotency -----------------------------------------------------------------------------


def test_idempotent_creates(api):
    name, key = unique("idem"), secrets.token_hex(8)
    first = api("POST", "/registries", json={"name": name}, headers={"Idempotency-Key": key})
    again = api("POST", "/registries", json={"name": name}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["operation"]["id"] == first.json()["operation"]["id"]
    other = api("POST", "/registries", json={"name": unique("idem")}, headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["invalid_params"][0]["name"] == "Idempotency-Key"
    assert api("POST", "/registries", json={"name": name}).status_code == 409  # without the key: a conflict
    t1 = api("POST", "/tokens", json={"name": "idem-token"}, headers={"Idempotency-Key": key + "t"})
    t2 = api("POST", "/tokens", json={"name": "idem-token"}, headers={"Idempotency-Key": key + "t"})
    assert t1.json()["id"] == t2.json()["id"]


def test_a_restarted_server_resumes_an_operation_its_predecessor_left_running(fresh_server):
    """The state a crash leaves behind (an operation `running` under a dead worker's lease) is
    written into the real database while the server is down; the next server picks it up."""
    import sqlite3

    from tests.support import postgres

    if postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("this test edits the SQLite database file directly")
    srv = fresh_server
    srv.env = {"BERTH_OPERATION_LEASE": "1", "BERTH_OPERATION_POLL": "1"}
    srv.start()
    api = Api(srv)
    r = api("POST", "/registries", json={"name": "crashy"})
    op = api.wait(r.json()["operation"])
    srv.stop()
    db = sqlite3.connect(srv.data_dir / "berth.db")
    with db:
        db.execute("UPDATE registry SET status = 'provisioning' WHERE name = 'crashy'")
        db.execute(
            "UPDATE operation SET state = 'running', lease_owner = 'dead-host:1', "
            "lease_until = datetime('now', '+2 seconds'), finished_at = NULL, steps = ? WHERE id = ?",
            (
                json.dumps([{"name": "provision", "state": "running"}, {"name": "activate", "state": "pending"}]),
                op["id"],
            ),
        )
    db.close()
    srv.start()
    assert api("GET", "/registries/crashy").json()["status"] == "provisioning"
    resumed = api.wait(op, timeout=30)
    assert resumed["state"] == "succeeded", resumed
    assert any("resuming: the worker running it stopped" in line for line in resumed["log"])
    assert api("GET", "/registries/crashy").json()["status"] == "ready"


def test_a_push_whose_audit_record_cannot_be_written_is_not_stored(fresh_server):
    """The push and its audit record are one transaction: when the record cannot be written (a
    trigger refuses it, written into the real database beside the running server), the client
    gets 503 and nothing of the push is stored; once records can be written, the same push
    succeeds and is recorded."""
    import sqlite3

    from tests.support import postgres

    if postgres.ALL_SERVERS_ON_POSTGRES:
        pytest.skip("this test edits the SQLite database file directly")
    srv = fresh_server.start()
    c = RegistryClient(srv.url, srv.session())
    db = sqlite3.connect(srv.data_dir / "berth.db")
    db.execute(
        "CREATE TRIGGER refuse_push_records BEFORE INSERT ON audit_event WHEN NEW.action = 'manifest.push' "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail refuses'); END"
    )
    db.commit()
    with pytest.raises(AssertionError) as refused:
        c.push_image("default/aud/app", "v1")
    error = json.loads(str(refused.value).split("\n")[0])["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "audit trail" in error["message"]
    assert c.request("GET", "/v2/default/aud/app/manifests/v1").status_code == 404
    assert c.request("GET", "/v2/default/aud/app/tags/list").json().get("tags") in (None, [])
    db.execute("DROP TRIGGER refuse_push_records")
    db.commit()
    digest, _, _ = c.push_image("default/aud/app", "v1")
    assert c.request("GET", "/v2/default/aud/app/manifests/v1").headers["Docker-Content-Digest"] == digest
    pushes = db.execute(
        "SELECT digest, outcome, status FROM audit_event WHERE action = 'manifest.push' ORDER BY id"
    ).fetchall()
    assert pushes[-1] == (digest, "success", 201)
    assert all(row[1] != "success" for row in pushes[:-1])  # the undone push left no success behind
    db.close()
