"""Metering, SKUs and quotas, immutable tags, on a real server (and real clients where the
message matters): usage numbers equal a walk of the blob store after pushes, deletes and garbage
collection; traffic counters are exact; a push past a hard quota is refused before its bytes are
stored (monolithic, with digest, chunked, at finish); only owners and admins change SKUs;
immutable tags refuse overwrites and deletes."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time

import pytest
import requests

from tests.integration.test_cli import Berth
from tests.support.management import Api
from tests.support.oci_layout import OCILayout
from tests.support.registry_client import RegistryClient, sha256
from tests.support.server import ROOT, Server

TINY_LIMIT = 20_000
SKUS = [
    {
        "name": "standard",
        "title": "Standard",
        "included_bytes": 10 * 1024**3,
        "hard_limit_bytes": None,
        "price_per_gib": 0.08,
        "default": True,
    },
    {"name": "tiny", "title": "Tiny", "included_bytes": 10_000, "hard_limit_bytes": TINY_LIMIT},
    {
        "name": "roomy",
        "title": "Roomy",
        "included_bytes": 50_000,
        "hard_limit_bytes": 10 * 1024**2,
        "price_per_gib": 0.5,
    },
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("meter") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        metrics=True,
        env={"BERTH_SKUS": json.dumps(SKUS), "BERTH_GC_GRACE": "0", "BERTH_GC_INTERVAL": "0"},
    ).start()
    yield server
    server.stop()


@pytest.fixture
def api(srv) -> Api:
    return Api(srv)


def client(srv: Server) -> RegistryClient:
    return RegistryClient(srv.url, srv.session())


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def registry_id(srv: Server, name: str) -> int:
    from app.db.models import Registry
    from app.db.setup import database_for

    db = database_for(srv.database_url or f"sqlite:///{srv.data_dir / 'berth.db'}")
    with db.bind_ctx([Registry]), db.connection_context():
        return Registry.get(Registry.name == name).id


def walk(srv: Server, registry: str) -> dict[str, int]:
    """digest -> size of every blob file the store holds for the registry."""
    root = srv.data_dir / "storage" / "blobs" / str(registry_id(srv, registry))
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return {f"{p.parent.parent.name}:{p.name}": p.stat().st_size for p in files}


def assert_usage_matches_store(api: Api, srv: Server, name: str) -> dict:
    usage = api("GET", f"/registries/{name}/usage").json()
    on_disk = walk(srv, name)
    assert usage["storage"]["stored_bytes"] == sum(on_disk.values())
    assert usage["storage"]["blobs"] == len(on_disk)
    view = api("GET", f"/registries/{name}").json()
    assert view["usage"]["stored_bytes"] == sum(on_disk.values()) == view["quota"]["used_bytes"]
    return usage


def chunked(c: RegistryClient, repo: str, chunks: list[bytes]) -> str:
    digest = sha256(b"".join(chunks))
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location, offset = r.headers["Location"], 0
    for chunk in chunks:
        r = c.request(
            "PATCH",
            location,
            data=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert r.status_code == 202, r.text
        location, offset = r.headers["Location"], offset + len(chunk)
    r = c.request("PUT", location, params={"digest": digest})
    assert r.status_code == 201, r.text
    return digest


# --- metering -------------------------------------------------------------------------------------


def test_usage_is_exact_after_pushes_deletes_and_gc(srv, api):
    name = unique("meter")
    api.create(name)
    c = client(srv)
    shared, only_a, only_b = os.urandom(7000), os.urandom(3000), os.urandom(1500)
    digest_a1, body_a1, _ = c.push_image(f"{name}/team/a", "v1", layers=[shared, only_a])
    digest_a2, body_a2, _ = c.push_image(f"{name}/team/a", "v2", layers=[shared])
    c.push_image(f"{name}/b", "v1", layers=[shared, only_b])
    chunks = [os.urandom(4000), os.urandom(2500)]
    chunked_digest = chunked(c, f"{name}/b", chunks)
    # A mount of a blob the registry holds adds no bytes.
    r = c.request("POST", f"/v2/{name}/c/blobs/uploads/", params={"mount": sha256(only_a), "from": f"{name}/team/a"})
    assert r.status_code == 201, r.text

    usage = assert_usage_matches_store(api, srv, name)
    config = json.loads(body_a1)["config"]["size"]  # the same config blob in every image here
    assert usage["storage"] == {
        "stored_bytes": 7000 + 3000 + 1500 + 6500 + config,
        "blobs": 5,
        "repositories": 3,
        "tags": 3,
        "manifests": 3,
    }
    repos = {r["name"]: r for r in usage["repositories"]}
    assert repos["team/a"] == {
        "name": "team/a",
        "stored_bytes": 7000 + 3000 + config,
        "blobs": 3,
        "tags": 2,
        "manifests": 2,
    }
    assert repos["b"] == {
        "name": "b",
        "stored_bytes": 7000 + 1500 + 6500 + config,
        "blobs": 4,
        "tags": 1,
        "manifests": 1,
    }
    assert repos["c"] == {"name": "c", "stored_bytes": 3000, "blobs": 1, "tags": 0, "manifests": 0}
    # The repository view carries the same numbers.
    shown = api("GET", f"/registries/{name}/repositories/team/a").json()
    assert shown["stored_bytes"] == repos["team/a"]["stored_bytes"] and shown["manifests"] == 2
    assert shown["tags"] == 2 and shown["immutable_tags"] is False

    # Pushes: every completed blob upload's bytes (each config push too), and manifest PUTs.
    pushed_a = usage_of(usage, "team/a")
    assert pushed_a["pushes"] == 2
    assert pushed_a["push_bytes"] == (config + 7000 + 3000) + (config + 7000) + len(body_a1) + len(body_a2)
    assert usage_of(usage, "b")["push_bytes"] >= 6500 + 7000 + 1500
    assert usage_of(usage, "c") == {"pulls": 0, "pull_bytes": 0, "pushes": 0, "push_bytes": 0}

    # Pulls: manifest GETs count as pulls; blob GETs add bytes (a range: the bytes sent); HEADs nothing.
    assert c.request("GET", f"/v2/{name}/team/a/manifests/v1").status_code == 200
    assert c.request("HEAD", f"/v2/{name}/team/a/manifests/v1").status_code == 200
    assert c.request("GET", f"/v2/{name}/team/a/blobs/{sha256(shared)}").content == shared
    assert c.request("HEAD", f"/v2/{name}/team/a/blobs/{sha256(shared)}").status_code == 200
    r = c.request("GET", f"/v2/{name}/team/a/blobs/{sha256(only_a)}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert c.request("GET", f"/v2/{name}/team/a/manifests/nope").status_code == 404
    usage = assert_usage_matches_store(api, srv, name)
    pulled = usage_of(usage, "team/a")
    assert (pulled["pulls"], pulled["pull_bytes"]) == (1, len(body_a1) + 7000 + 100)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert {d["day"] for d in usage["days"]} == {today}
    assert usage["traffic"]["pulls"] == 1
    only = api("GET", f"/registries/{name}/usage", params={"repository": "b", "since": today, "until": today}).json()
    assert [d["repository"] for d in only["days"]] == ["b"] and [r["name"] for r in only["repositories"]] == ["b"]
    assert (
        api("GET", f"/registries/{name}/usage", params={"since": "1999-01-01", "until": "1999-01-31"}).json()["days"]
        == []
    )

    # Deletes: the tag, then the manifest, a blob link; the store holds the bytes until GC.
    assert c.request("DELETE", f"/v2/{name}/team/a/manifests/v2").status_code == 202
    assert c.request("DELETE", f"/v2/{name}/team/a/manifests/{digest_a1}").status_code == 202
    assert c.request("DELETE", f"/v2/{name}/b/blobs/{chunked_digest}").status_code == 202
    usage = assert_usage_matches_store(api, srv, name)
    assert usage["storage"]["tags"] == 1 and usage["storage"]["manifests"] == 2
    assert {r["name"]: r["tags"] for r in usage["repositories"]} == {"team/a": 0, "b": 1, "c": 0}

    # Garbage collection (grace 0 on this server): what nothing references goes, and the usage
    # numbers follow the store exactly.
    r = api("POST", f"/registries/{name}/gc", json={})
    assert r.status_code == 200, r.text
    usage = assert_usage_matches_store(api, srv, name)
    assert sha256(only_a) not in walk(srv, name) and chunked_digest not in walk(srv, name)
    assert sha256(shared) in walk(srv, name) and sha256(only_b) in walk(srv, name)
    assert usage["storage"]["manifests"] == 1


def usage_of(usage: dict, repository: str) -> dict:
    rows = [d for d in usage["days"] if d["repository"] == repository]
    return {k: sum(d[k] for d in rows) for k in ("pulls", "pull_bytes", "pushes", "push_bytes")}


def test_a_push_with_tag_parameters_is_metered_as_one_push_stores_no_bytes_and_counts_each_tag(srv, api):
    """Tags are rows, not bytes: a push by digest with `tag` parameters is one push (its manifest's
    bytes), passes a full hard quota as any manifest push does, and each tag counts in the usage."""
    name = unique("tagq")
    api.create(name, sku="tiny")
    c = client(srv)
    repo = f"{name}/app"
    digest, body, _ = c.push_image(repo, None, layers=[os.urandom(TINY_LIMIT - 1000)])
    config = json.loads(body)["config"]["size"]
    c.push_blob(repo, os.urandom(1000 - config))
    assert api("GET", f"/registries/{name}").json()["quota"]["remaining_bytes"] == 0
    before = usage_of(api("GET", f"/registries/{name}/usage").json(), "app")
    r = c.request(
        "PUT",
        f"/v2/{repo}/manifests/{digest}",
        params={"tag": ["1.0.0", "1.0", "1", "latest"]},
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 201, r.text
    usage = assert_usage_matches_store(api, srv, name)
    assert usage["storage"]["tags"] == 4 and usage["storage"]["stored_bytes"] == TINY_LIMIT
    after = usage_of(usage, "app")
    assert after["pushes"] - before["pushes"] == 1 and after["push_bytes"] - before["push_bytes"] == len(body)


def test_usage_parameters_are_checked(api):
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "since"),
    ):
        r = api("GET", "/registries/default/usage", params=params)
        assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == field, r.text


def test_metrics_carry_stored_bytes_counts_and_pull_push_counters(srv, api):
    name = unique("metrics")
    api.create(name)
    c = client(srv)
    c.push_image(f"{name}/app", "v1", layers=[os.urandom(2000)])
    assert c.request("GET", f"/v2/{name}/app/manifests/v1").status_code == 200
    text = requests.get(srv.metrics_url, timeout=10).text
    stored = sum(walk(srv, name).values())

    def value(metric: str) -> float:
        m = re.search(rf'^{metric}{{registry="{name}"}} (\S+)$', text, re.M)
        assert m, f"{metric} for {name} missing"
        return float(m.group(1))

    assert value("berth_storage_bytes") == stored
    assert value("berth_blobs") == 2 and value("berth_tags") == 1 and value("berth_manifests") == 1
    assert value("berth_pushes_total") == 1 and value("berth_pulls_total") == 1


# --- SKUs -----------------------------------------------------------------------------------------


def test_the_sku_catalog_is_served_to_any_authenticated_caller(srv, api):
    reader = api("POST", "/tokens", json={"name": unique("reader"), "scope": "pull"}).json()["token"]
    for caller in (api, Api(srv, reader)):
        r = caller("GET", "/api/v1/skus")
        assert r.status_code == 200, r.text
        body = r.json()
        assert [s["name"] for s in body["skus"]] == ["standard", "tiny", "roomy"] and body["default"] == "standard"
        tiny = body["skus"][1]
        assert tiny["hard_limit_bytes"] == TINY_LIMIT and tiny["included_bytes"] == 10_000
        assert tiny["price_per_gib"] is None and tiny["default"] is False
    assert Api(srv, "")("GET", "/api/v1/skus").status_code == 401


def test_only_owners_and_admins_change_a_registry_sku(srv, api):
    name = unique("sku")
    shown = api.create(name)
    assert shown["sku"] == "standard" and shown["quota"]["limit_bytes"] is None
    developer = Api(srv, api("POST", "/tokens", json={"name": unique("dev"), "scope": "push"}).json()["token"])
    r = developer("PATCH", f"/registries/{name}", json={"sku": "roomy"})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "DENIED" and "owner or admin" in r.json()["detail"]
    assert r.json()["invalid_params"][0]["name"] == "sku"
    # The rest of a PATCH stays a developer's to make.
    assert developer("PATCH", f"/registries/{name}", json={"visibility": "public"}).status_code == 200
    r = api("PATCH", f"/registries/{name}", json={"sku": "gold"})
    assert r.status_code == 400 and "standard" in r.json()["detail"]
    r = api("PATCH", f"/registries/{name}", json={"sku": "roomy"})
    assert r.status_code == 200, r.text
    assert r.json()["sku"] == "roomy"
    assert r.json()["quota"] == {
        "sku": "roomy",
        "limit_bytes": 10 * 1024**2,
        "included_bytes": 50_000,
        "used_bytes": 0,
        "remaining_bytes": 10 * 1024**2,
    }
    audit = api("GET", "/audit", params={"action": "registry.update", "registry": name}).json()["events"]
    assert audit[0]["detail"] == {"sku": "roomy"} and audit[0]["outcome"] == "success"
    assert any(e["outcome"] == "denied" for e in audit)
    assert api("PATCH", f"/registries/{name}", json={"sku": None}).json()["sku"] == "standard"


# --- quotas ---------------------------------------------------------------------------------------


def _denied(r: requests.Response) -> str:
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "storage quota exceeded" in error["message"] and str(TINY_LIMIT) in error["message"]
    assert "Delete images" in error["message"] and "--sku" in error["message"]
    return error["message"]


def test_a_push_past_the_hard_limit_is_refused_before_its_bytes_are_stored(srv, api):
    name = unique("quota")
    api.create(name, sku="tiny")
    c = client(srv)
    repo = f"{name}/app"
    first = os.urandom(12_000)
    c.push_blob(repo, first)
    before = walk(srv, name)

    # Monolithic with digest: refused, and no upload session is left behind.
    big = os.urandom(9_000)
    message = _denied(c.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(big)}, data=big))
    assert "stores 11.7 KiB" in message and "tiny" in message

    # POST then PUT with the whole body: refused at the PUT, and the upload is cancelled.
    location = c.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    _denied(c.request("PUT", location, params={"digest": sha256(big)}, data=big))
    assert c.request("GET", location).status_code == 404

    # Chunked: the chunk that would pass the limit is refused before it is written.
    location = c.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    r = c.request("PATCH", location, data=big[:5000], headers={"Content-Range": "0-4999"})
    assert r.status_code == 202
    location = r.headers["Location"]
    _denied(c.request("PATCH", location, data=big[5000:], headers={"Content-Range": "5000-8999"}))
    assert c.request("GET", location).headers["Range"] == "0-4999"  # nothing of it was kept
    # ... and so is a finishing PUT carrying the last bytes; that upload is gone.
    _denied(c.request("PUT", location, params={"digest": sha256(big)}, data=big[5000:]))
    assert c.request("GET", location).status_code == 404
    assert walk(srv, name) == before, "a refused push stored bytes"
    assert not list((srv.data_dir / "storage" / "uploads").glob(location.rsplit("/", 1)[-1] + "*"))

    # Up to the limit exactly is allowed; a blob the registry already stores adds nothing.
    fits = os.urandom(TINY_LIMIT - 12_000)
    c.push_blob(repo, fits)
    assert api("GET", f"/registries/{name}").json()["quota"]["remaining_bytes"] == 0
    c.push_blob(f"{name}/other", first)
    location = c.request("POST", f"/v2/{name}/other/blobs/uploads/").headers["Location"]
    assert c.request("PUT", location, params={"digest": sha256(fits)}, data=fits).status_code == 201
    _denied(c.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, data=b"x"))
    assert_usage_matches_store(api, srv, name)

    # Moving to a larger SKU lets the push through.
    assert api("PATCH", f"/registries/{name}", json={"sku": "roomy"}).status_code == 200
    c.push_blob(repo, big)
    usage = assert_usage_matches_store(api, srv, name)
    assert usage["quota"]["used_bytes"] == TINY_LIMIT + 9_000


def test_the_organization_sku_applies_to_registries_without_their_own(srv, api):
    name = unique("orgsku")
    api.create(name)

    def admin(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "BERTH_SKUS": json.dumps(SKUS)}
        if srv.database_url:
            env["BERTH_DATABASE_URL"] = srv.database_url
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "admin", "org", "sku", *args, "--data-dir", str(srv.data_dir)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert admin("default").stdout.strip() == "organization 'default': SKU 'standard' (the catalog's default)"
    refused = admin("default", "gold")
    assert refused.returncode != 0 and "no SKU 'gold'" in refused.stderr
    assert admin("default", "tiny").stdout.strip() == "organization 'default': SKU 'tiny'"
    try:
        assert api("GET", f"/registries/{name}").json()["quota"]["limit_bytes"] == TINY_LIMIT
        blob = os.urandom(TINY_LIMIT + 1)
        _denied(
            client(srv).request("POST", f"/v2/{name}/app/blobs/uploads/", params={"digest": sha256(blob)}, data=blob)
        )
        # A registry's own SKU overrides the organization's.
        api("PATCH", f"/registries/{name}", json={"sku": "roomy"})
        client(srv).push_blob(f"{name}/app", blob)
    finally:
        assert admin("default", "default").returncode == 0


def test_skopeo_push_refused_by_quota_shows_the_message(srv, api, skopeo, tmp_path):
    name = unique("skoq")
    api.create(name, sku="tiny")
    source = OCILayout(tmp_path / "source")
    source.add_image({"big.bin": os.urandom(3 * TINY_LIMIT)}, tag="v1")  # random: does not compress
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"admin:{srv.token}",
        f"oci:{source.root}:v1",
        f"docker://{srv.host}/{name}/app:v1",
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert "storage quota exceeded" in result.stderr and "tiny" in result.stderr, result.stderr
    assert sum(walk(srv, name).values()) <= TINY_LIMIT
    assert_usage_matches_store(api, srv, name)


def test_docker_push_refused_by_quota_shows_the_message(srv, api, docker, tmp_path):
    name = unique("dockq")
    api.create(name, sku="tiny")
    context = tmp_path / "context"
    context.mkdir()
    (context / "big.bin").write_bytes(os.urandom(3 * TINY_LIMIT))
    (context / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\n")
    image = f"{srv.host}/{name}/app:v1"
    docker("login", srv.host, "-u", "admin", "-p", srv.token, timeout=60)
    docker("build", "-t", image, str(context), timeout=300)
    result = docker("push", image, check=False, timeout=300)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "storage quota exceeded" in output, output
    assert sum(walk(srv, name).values()) <= TINY_LIMIT


# --- immutable tags -------------------------------------------------------------------------------


def test_immutable_tags_refuse_overwrites_and_deletes_with_skopeo(srv, api, skopeo, tmp_path):
    name = unique("immut")
    shown = api.create(name, immutable_tags=["rel/*", "prod-*"])
    assert shown["immutable_tags"] == ["prod-*", "rel/*"]
    creds = f"admin:{srv.token}"
    source = OCILayout(tmp_path / "source")
    one = source.add_image({"a.txt": b"one\n"}, tag="one")
    two = source.add_image({"a.txt": b"two\n"}, tag="two")

    def push(tag: str, repo: str, ref: str, check: bool = True):
        return skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{source.root}:{tag}",
            f"docker://{srv.host}/{name}/{repo}:{ref}",
            check=check,
            timeout=300,
        )

    push("one", "rel/app", "v1")
    push("one", "rel/app", "v1")  # the same digest again: allowed
    refused = push("two", "rel/app", "v1", check=False)
    assert refused.returncode != 0
    assert "immutable" in refused.stderr and one.digest in refused.stderr, refused.stderr
    c = client(srv)
    head = c.request("HEAD", f"/v2/{name}/rel/app/manifests/v1")
    assert head.headers["Docker-Content-Digest"] == one.digest
    push("two", "rel/app", "v2")  # a new tag is fine
    # Deleting the tag, or the tagged manifest, is refused too.
    r = c.request("DELETE", f"/v2/{name}/rel/app/manifests/v1")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED" and "immutable" in r.text
    r = c.request("DELETE", f"/v2/{name}/rel/app/manifests/{one.digest}")
    assert r.status_code == 403 and "v1" in r.json()["errors"][0]["message"]
    # Repositories not matching a pattern keep the default write policy.
    push("one", "dev/app", "v1")
    push("two", "dev/app", "v1")
    assert c.request("HEAD", f"/v2/{name}/dev/app/manifests/v1").headers["Docker-Content-Digest"] == two.digest
    assert api("GET", f"/registries/{name}/repositories/rel/app").json()["immutable_tags"] is True
    # Audited as denied; and lifting the pattern allows the overwrite again.
    events = api("GET", "/audit", params={"registry": name, "action": "manifest.push"}).json()["events"]
    assert any(e["outcome"] == "denied" and e["tag"] == "v1" for e in events)
    assert api("PATCH", f"/registries/{name}", json={"immutable_tags": []}).json()["immutable_tags"] == []
    push("two", "rel/app", "v1")


def test_immutable_tag_patterns_are_validated(api):
    for bad in ("rel/*", [""], [" padded"], ["x" * 256], [1], ["a"] * 101):
        r = api("PATCH", "/registries/default", json={"immutable_tags": bad})
        assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "immutable_tags", r.text


def test_racing_pushes_of_a_new_immutable_tag_never_overwrite(srv, api):
    from concurrent.futures import ThreadPoolExecutor

    name = unique("race")
    api.create(name, immutable_tags=["*"])
    c = client(srv)
    images = []
    for i in range(8):
        layer = f"layer {i}".encode()
        config = json.dumps({"i": i}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": c.push_blob(f"{name}/app", config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": c.push_blob(f"{name}/app", layer),
                    "size": len(layer),
                }
            ],
        }
        images.append(json.dumps(manifest).encode())
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda body: c.push_manifest(f"{name}/app", "latest", body), images))
    won = [r for r in results if r.status_code == 201]
    assert len(won) == 1 and all(r.status_code == 403 for r in results if r is not won[0])
    held = c.request("HEAD", f"/v2/{name}/app/manifests/latest").headers["Docker-Content-Digest"]
    assert held == won[0].headers["Docker-Content-Digest"]


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_skus_usage_and_registry_set(srv, api, tmp_path):
    berth = Berth(tmp_path / "home", BERTH_URL=srv.url, BERTH_TOKEN=srv.token)
    name = unique("clisku")
    api.create(name)
    client(srv).push_image(f"{name}/app", "v1", layers=[os.urandom(3000)])

    out = berth("skus").stdout
    assert re.search(r"^tiny\s+Tiny\s+9\.8 KiB\s+19\.5 KiB\s+-", out, re.M), out
    assert re.search(r"^standard\s+Standard\s+10\.0 GiB\s+none\s+0\.08 USD\s+yes", out, re.M), out
    assert [s["name"] for s in berth.json("skus")["skus"]] == ["standard", "tiny", "roomy"]

    out = berth("registry", "set", name, "--sku", "tiny", "--immutable-tags", "rel/*,prod-*").stdout
    assert f"registry '{name}' has SKU 'tiny'" in out and "of 19.5 KiB used" in out and "rel/*" in out
    shown = berth("registry", "show", name).stdout
    stored = sum(walk(srv, name).values())
    assert re.search(r"^sku:\s+tiny$", shown, re.M), shown
    assert re.search(rf"^quota:\s+{re.escape(_size(stored))} of 19\.5 KiB used \(\d+%\), .* remaining$", shown, re.M), (
        shown
    )
    assert re.search(r"^immutable tags:\s+prod-\*, rel/\*$", shown, re.M), shown
    assert berth.json("registry", "show", name)["quota"]["used_bytes"] == stored

    out = berth("usage", name).stdout
    assert re.search(rf"^app\s+{re.escape(_size(stored))}\s+2\s+1\s+1$", out, re.M), out
    assert re.search(r"0 pulls \(0 B\), 1 pushes", out), out
    report = berth.json("usage", name, "--repository", "app")
    assert report["storage"]["stored_bytes"] == stored and report["traffic"]["pushes"] == 1
    assert "owner or admin" in Berth(
        tmp_path / "dev",
        BERTH_URL=srv.url,
        BERTH_TOKEN=api("POST", "/tokens", json={"name": unique("d"), "scope": "push"}).json()["token"],
    ).fails("registry", "set", name, "--sku", "roomy")
    assert "nothing to change" in berth.fails("registry", "set", name)
    assert (
        berth("registry", "set", name, "--immutable-tags", "")
        .stdout.strip()
        .endswith("allows tag overwrites in every repository")
    )


def _size(n: int) -> str:
    from app.client.output import size

    return size(n)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_traffic_counted_in_memory_is_written_when_the_server_stops(tmp_path, workers):
    """Counts are buffered (no write per pull) and flushed every few seconds; a server told to
    stop (SIGTERM, as a Deployment does) writes what it holds before it exits, in each of its
    worker processes too (which end with os._exit, past atexit handlers)."""
    server = Server(
        tmp_path / "data", token="berth_" + secrets.token_urlsafe(32), env={"BERTH_WORKERS": workers}
    ).start()
    try:
        c = RegistryClient(server.url, server.session())
        c.push_image("default/flushed", "v1")
        for _ in range(7):
            c.s.headers["Connection"] = "close"  # new connections: with 2 workers, both serve
            assert c.request("GET", "/v2/default/flushed/manifests/v1").status_code == 200
        server.stop()  # at once: well within the flush interval
        server.start()
        rows = Api(server)(
            "GET", "/api/v1/orgs/default/registries/default/usage", params={"repository": "flushed"}
        ).json()
        days = rows.get("days") or rows.get("traffic") or rows
        text = json.dumps(days)
        assert '"pulls": 7' in text, text
    finally:
        server.stop()


def test_a_second_stop_signal_does_not_cut_the_shutdown_short(tmp_path):
    """A supervisor and a wrapper both signalling (or an impatient Ctrl-C) send SIGTERM twice: the
    first stop still completes, writing the buffered counts, with no traceback."""
    import signal
    import time

    server = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    try:
        c = RegistryClient(server.url, server.session())
        c.push_image("default/twice", "v1")
        for _ in range(3):
            assert c.request("GET", "/v2/default/twice/manifests/v1").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.05)  # into the shutdown
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        assert "Traceback" not in server.logs()
        server.start()
        usage = Api(server)(
            "GET", "/api/v1/orgs/default/registries/default/usage", params={"repository": "twice"}
        ).json()
        assert '"pulls": 3' in json.dumps(usage.get("days") or usage.get("traffic") or usage)
    finally:
        server.stop()
