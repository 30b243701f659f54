"""The per-registry manifest validation policy (strict, index-sparse, sparse) on a real server: set
through the API and the CLI, each mode's acceptance and refusal of manifest pushes over HTTP, what
garbage collection, browse, quotas, metering and retention do with absent references, and skopeo's
`--multi-arch index-only` copy.

The spec (opencontainers/distribution-spec, spec.md, "Push") leaves the choice to the registry:
"A registry MAY reject a manifest of any type uploaded to the manifest endpoint if it references
manifests or blobs that do not exist in the registry. [...] When a manifest is rejected for these
reasons, it MUST result in one or more MANIFEST_BLOB_UNKNOWN errors."
"""

from __future__ import annotations

import json
import re
import secrets

import pytest

from tests.integration.test_cli import Berth
from tests.support.management import Api
from tests.support.oci_layout import OCI_INDEX as LAYOUT_INDEX
from tests.support.oci_layout import OCILayout
from tests.support.registry_client import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256
from tests.support.server import Server

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # No grace period: a collection run by a test decides about everything pushed before it.
    server = Server(
        tmp_path_factory.mktemp("policy") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_GC_INTERVAL": "0", "BERTH_GC_GRACE": "0"},
    ).start()
    yield server
    server.stop()


@pytest.fixture
def api(srv) -> Api:
    return Api(srv)


@pytest.fixture
def client(srv) -> RegistryClient:
    return RegistryClient(srv.url, srv.session())


def registry(api: Api, mode: str | None = None, platforms: list[str] | None = None) -> str:
    """A new registry with the policy `mode` (none set: the default)."""
    name = f"mp{secrets.token_hex(4)}"
    policy = {"manifest_policy": {"mode": mode, "required_platforms": platforms or []}} if mode else {}
    shown = api.create(name, **policy)
    assert shown["manifest_policy"]["mode"] == (mode or "strict"), shown
    return name


def index_of(*children: tuple[str, str | None], media_type: str = OCI_INDEX) -> dict:
    """An index of (digest, "os/arch[/variant]" or None) children."""
    entries = []
    for digest, platform in children:
        entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 500}
        if platform:
            parts = platform.split("/")
            entry["platform"] = {
                "os": parts[0],
                "architecture": parts[1],
                **({"variant": parts[2]} if parts[2:] else {}),
            }
        entries.append(entry)
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}


def absent() -> str:
    return sha256(secrets.token_bytes(16))


def with_absent_layer(manifest: dict, size: int = 123_456_789) -> tuple[dict, str]:
    digest = absent()
    return {**manifest, "layers": [*manifest["layers"], {"mediaType": LAYER, "digest": digest, "size": size}]}, digest


def error(r) -> dict:
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()["errors"][0]


# --- setting the policy -----------------------------------------------------------------------


def test_a_registry_is_strict_until_its_policy_is_changed_and_the_patch_replaces_the_whole_policy(api):
    name = registry(api)
    assert api("GET", f"/registries/{name}").json()["manifest_policy"] == {"mode": "strict", "required_platforms": []}
    r = api(
        "PATCH",
        f"/registries/{name}",
        json={
            "manifest_policy": {
                "mode": "index-sparse",
                "required_platforms": ["linux/arm64/v8", "linux/amd64", "linux/amd64"],
            }
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["manifest_policy"] == {
        "mode": "index-sparse",
        "required_platforms": ["linux/amd64", "linux/arm64/v8"],
    }
    r = api("PATCH", f"/registries/{name}", json={"manifest_policy": {"mode": "sparse"}})
    assert r.json()["manifest_policy"] == {"mode": "sparse", "required_platforms": []}
    r = api("PATCH", f"/registries/{name}", json={"manifest_policy": None})
    assert r.json()["manifest_policy"] == {"mode": "strict", "required_platforms": []}


@pytest.mark.parametrize(
    "policy, names",
    [
        ("index-sparse", "must be an object"),
        ({"mode": "lenient"}, "mode must be one of ['strict', 'index-sparse', 'sparse']"),
        ({}, "mode must be one of"),
        ({"mode": "sparse", "platforms": []}, "no field 'platforms'"),
        ({"mode": "index-sparse", "required_platforms": "linux/amd64"}, "must be a list"),
        ({"mode": "index-sparse", "required_platforms": ["linux"]}, "'linux' is not a platform"),
        ({"mode": "index-sparse", "required_platforms": ["Linux/AMD64"]}, "is not a platform"),
        ({"mode": "index-sparse", "required_platforms": ["linux/arm/v7/x"]}, "is not a platform"),
        ({"mode": "index-sparse", "required_platforms": [7]}, "is not a platform"),
        ({"mode": "index-sparse", "required_platforms": [f"linux/a{i}" for i in range(51)]}, "up to 50"),
        (
            {"mode": "strict", "required_platforms": ["linux/amd64"]},
            "only applies to the modes index-sparse and sparse",
        ),
    ],
)
def test_an_invalid_manifest_policy_is_refused_naming_the_field_and_the_rule(api, policy, names):
    name = registry(api, "sparse")
    r = api("PATCH", f"/registries/{name}", json={"manifest_policy": policy})
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["code"] == "INVALID" and problem["invalid_params"][0]["name"] == "manifest_policy", problem
    assert names in problem["detail"], problem
    assert api("GET", f"/registries/{name}").json()["manifest_policy"]["mode"] == "sparse"


def test_developers_may_change_the_manifest_policy_and_readers_may_not(srv, api):
    name = registry(api)
    developer = Api(
        srv, api("POST", "/tokens", json={"name": f"dev{secrets.token_hex(3)}", "scope": "push"}).json()["token"]
    )
    reader = Api(
        srv, api("POST", "/tokens", json={"name": f"ro{secrets.token_hex(3)}", "scope": "pull"}).json()["token"]
    )
    sparse = {"manifest_policy": {"mode": "sparse"}}
    assert reader("PATCH", f"/registries/{name}", json=sparse).status_code == 403
    assert api("GET", f"/registries/{name}").json()["manifest_policy"]["mode"] == "strict"
    r = developer("PATCH", f"/registries/{name}", json=sparse)
    assert r.status_code == 200 and r.json()["manifest_policy"]["mode"] == "sparse", r.text
    events = api("GET", "/audit", params={"action": "registry.update", "registry": name}).json()["events"]
    assert [(e["outcome"], e["detail"]) for e in events if e["outcome"] == "success"] == [
        ("success", {"manifest_policy": {"mode": "sparse"}})
    ]


def test_the_cli_sets_the_manifest_policy_and_registry_show_shows_it(srv, api, tmp_path):
    name = registry(api)
    berth = Berth(tmp_path / "home")
    berth("login", srv.url, "--token-stdin", input=srv.token + "\n")
    assert re.search(
        r"^manifest policy: +strict \(every referenced blob and child manifest must be pushed first\)$",
        berth("registry", "show", name).stdout,
        re.M,
    )

    said = berth(
        "registry",
        "set",
        name,
        "--manifest-policy",
        "index-sparse",
        "--require-platform",
        "linux/amd64",
        "--require-platform",
        "linux/arm64",
    ).stdout
    assert "index-sparse" in said and "linux/amd64, linux/arm64" in said, said
    shown = berth("registry", "show", name).stdout
    assert (
        "index-sparse (an index's child manifests may be absent); required platforms: linux/amd64, linux/arm64" in shown
    ), shown
    assert berth.json("registry", "show", name)["manifest_policy"] == {
        "mode": "index-sparse",
        "required_platforms": ["linux/amd64", "linux/arm64"],
    }

    assert "--require-platform goes with --manifest-policy" in berth.fails(
        "registry", "set", name, "--require-platform", "linux/amd64"
    )
    assert "is not a platform" in berth.fails(
        "registry", "set", name, "--manifest-policy", "sparse", "--require-platform", "linux"
    )
    berth("registry", "set", name, "--manifest-policy", "strict")
    assert berth.json("registry", "show", name)["manifest_policy"] == {"mode": "strict", "required_platforms": []}


# --- each mode over HTTP ----------------------------------------------------------------------


def test_a_strict_registry_refuses_an_index_whose_children_are_absent_naming_each_of_them(api, client):
    """ "A registry MAY reject a manifest of any type uploaded to the manifest endpoint if it
    references manifests or blobs that do not exist in the registry. [...] When a manifest is
    rejected for these reasons, it MUST result in one or more MANIFEST_BLOB_UNKNOWN errors." The
    default policy (strict) rejects, and says which children are missing and how to accept them."""
    repo = f"{registry(api)}/app"
    present, _, _ = client.push_image(repo, None)
    missing = absent()
    r = client.push_manifest(repo, "multi", index_of((present, "linux/amd64"), (missing, "linux/arm64")), OCI_INDEX)
    assert r.status_code == 400, r.text
    e = error(r)
    assert e["code"] == "MANIFEST_BLOB_UNKNOWN" and e["detail"] == {"digest": missing, "missing": [missing]}
    assert f"{missing} (linux/arm64)" in e["message"] and "index-sparse" in e["message"], e
    assert client.request("HEAD", f"/v2/{repo}/manifests/multi").status_code == 404


def test_a_strict_registry_refuses_an_image_manifest_whose_blobs_are_absent(api, client):
    """ "When a manifest is rejected for these reasons, it MUST result in one or more
    MANIFEST_BLOB_UNKNOWN errors": a strict registry holds every blob a manifest references."""
    repo = f"{registry(api)}/app"
    _, _, manifest = client.push_image(repo, None)
    manifest, one = with_absent_layer(manifest)
    manifest, two = with_absent_layer(manifest)
    r = client.push_manifest(repo, "v1", manifest)
    assert r.status_code == 400 and error(r)["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error(r)["detail"] == {"digest": min(one, two), "missing": sorted([one, two])}
    assert "references 2 blobs not in repository 'app'" in error(r)["message"]
    assert one in error(r)["message"] and two in error(r)["message"]


@pytest.mark.parametrize("list_type", [OCI_INDEX, DOCKER_LIST])
def test_an_index_sparse_registry_accepts_an_index_whose_children_are_absent(api, client, list_type):
    """The spec's rejection is a MAY ("A registry MAY reject a manifest [...] if it references
    manifests [...] that do not exist"): an index-sparse registry accepts the index, serves it byte
    for byte, and answers 404 for the absent children until they are pushed."""
    repo = f"{registry(api, 'index-sparse')}/app"
    missing = [absent(), absent()]
    body = json.dumps(index_of((missing[0], "linux/amd64"), (missing[1], "linux/arm64"), media_type=list_type)).encode()
    r = client.push_manifest(repo, "multi", body, list_type)
    assert r.status_code == 201, r.text
    got = client.request("GET", f"/v2/{repo}/manifests/multi", headers={"Accept": list_type})
    assert got.status_code == 200 and got.content == body and got.headers["Content-Type"] == list_type
    for digest in missing:
        assert client.request("HEAD", f"/v2/{repo}/manifests/{digest}").status_code == 404


def test_an_index_sparse_registry_still_requires_an_image_manifests_blobs(api, client):
    """index-sparse lets an index's children be absent, nothing else: a manifest referencing an
    absent blob still gets "one or more MANIFEST_BLOB_UNKNOWN errors"."""
    repo = f"{registry(api, 'index-sparse')}/app"
    _, _, manifest = client.push_image(repo, None)
    manifest, missing = with_absent_layer(manifest)
    r = client.push_manifest(repo, "v1", manifest)
    assert r.status_code == 400 and error(r)["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error(r)["detail"]["digest"] == missing


def test_required_platforms_must_be_present_when_the_index_lists_them(api, client):
    """With required platforms, an index-sparse registry rejects ("MUST result in one or more
    MANIFEST_BLOB_UNKNOWN errors") an index whose child for a required platform is absent; other
    platforms may be absent, a platform without a variant matches every variant, and an index
    that does not list a required platform at all is accepted."""
    repo = f"{registry(api, 'index-sparse', ['linux/amd64', 'linux/arm'])}/app"
    amd64, _, _ = client.push_image(repo, None)
    arm64, arm_v7, amd64_gone = absent(), absent(), absent()

    r = client.push_manifest(repo, "a", index_of((amd64, "linux/amd64"), (arm64, "linux/arm64")), OCI_INDEX)
    assert r.status_code == 201, r.text
    r = client.push_manifest(repo, "b", index_of((amd64_gone, "linux/amd64"), (arm64, "linux/arm64")), OCI_INDEX)
    assert r.status_code == 400 and error(r)["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error(r)["detail"]["missing"] == [amd64_gone] and f"{amd64_gone} (linux/amd64)" in error(r)["message"]
    r = client.push_manifest(repo, "c", index_of((amd64, "linux/amd64"), (arm_v7, "linux/arm/v7")), OCI_INDEX)
    assert r.status_code == 400 and error(r)["detail"]["missing"] == [arm_v7]
    r = client.push_manifest(repo, "d", index_of((arm64, "linux/arm64"), (absent(), "windows/amd64")), OCI_INDEX)
    assert r.status_code == 201, r.text


def test_a_sparse_registry_accepts_a_manifest_whose_blobs_are_absent(api, client):
    """Under the sparse policy the registry does not use the spec's MAY reject for blobs either:
    the manifest is stored and served; the absent blob answers 404 BLOB_UNKNOWN until it is
    pushed, and then it is served."""
    repo = f"{registry(api, 'sparse')}/app"
    _, _, manifest = client.push_image(repo, None)
    layer = secrets.token_bytes(100)
    manifest = {**manifest, "layers": [*manifest["layers"], {"mediaType": LAYER, "digest": sha256(layer), "size": 100}]}
    r = client.push_manifest(repo, "v1", manifest)
    assert r.status_code == 201, r.text
    assert client.request("GET", f"/v2/{repo}/manifests/v1").json() == manifest
    r = client.request("GET", f"/v2/{repo}/blobs/{sha256(layer)}")
    assert r.status_code == 404 and error(r)["code"] == "BLOB_UNKNOWN"
    client.push_blob(repo, layer)
    assert client.request("GET", f"/v2/{repo}/blobs/{sha256(layer)}").content == layer


def test_a_subject_need_not_exist_whatever_the_policy(api, client):
    """ "A registry MUST accept an otherwise valid manifest with a subject field that references a
    manifest that does not exist, allowing clients to push a manifest and referrers to that
    manifest in either order." A strict registry too."""
    repo = f"{registry(api)}/app"
    subject = {"mediaType": OCI_MANIFEST, "digest": absent(), "size": 321}
    digest, _, _ = client.push_image(repo, None, subject=subject)
    r = client.request("GET", f"/v2/{repo}/referrers/{subject['digest']}")
    assert [m["digest"] for m in r.json()["manifests"]] == [digest]


# --- absent references elsewhere ---------------------------------------------------------------


def test_garbage_collection_keeps_manifests_with_absent_references_and_what_they_reference(api, client):
    """A collection neither fails on nor deletes a tagged index whose child is absent, or a tagged
    manifest whose blob is absent; the present child stays (the index reaches it), and a blob
    pushed after the manifest that names it is kept as referenced. Unreferenced content goes."""
    name = registry(api, "sparse")
    repo = f"{name}/app"
    child, _, child_manifest = client.push_image(repo, None, layers=[b"child layer"])
    missing_child = absent()
    assert (
        client.push_manifest(
            repo, "multi", index_of((child, "linux/amd64"), (missing_child, "linux/arm64")), OCI_INDEX
        ).status_code
        == 201
    )
    late = secrets.token_bytes(64)
    manifest = {
        **child_manifest,
        "layers": [*child_manifest["layers"], {"mediaType": LAYER, "digest": sha256(late), "size": 64}],
    }
    manifest, missing_blob = with_absent_layer(manifest)
    r = client.push_manifest(repo, "image", manifest)
    assert r.status_code == 201, r.text
    image = r.headers["Docker-Content-Digest"]
    client.push_blob(repo, late)
    garbage = client.push_blob(repo, secrets.token_bytes(32))

    r = api("POST", f"/registries/{name}/gc")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["manifests_deleted"] == [] and [b["digest"] for b in report["blobs_deleted"]] == [garbage]
    for ref in ("multi", "image", child):
        assert client.request("HEAD", f"/v2/{repo}/manifests/{ref}").status_code == 200, ref
    assert client.request("HEAD", f"/v2/{repo}/manifests/{image}").status_code == 200
    assert client.request("GET", f"/v2/{repo}/blobs/{sha256(late)}").content == late
    for digest in (missing_child, missing_blob):
        assert client.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_browse_shows_absent_children_and_blobs_and_sizes_count_only_what_is_present(api, client):
    name = registry(api, "sparse")
    repo = f"{name}/app"
    child, _, child_manifest = client.push_image(repo, None, layers=[b"0123456789"])
    declared = sum(d["size"] for d in [child_manifest["config"], *child_manifest["layers"]])
    missing_child = absent()
    assert (
        client.push_manifest(
            repo, "multi", index_of((child, "linux/amd64"), (missing_child, "linux/arm64")), OCI_INDEX
        ).status_code
        == 201
    )
    manifest, missing_blob = with_absent_layer(child_manifest, size=5000)
    r = client.push_manifest(repo, "image", manifest)
    image = r.headers["Docker-Content-Digest"]

    tags = {t["name"]: t for t in api("GET", f"/registries/{name}/repositories/app/tags").json()["tags"]}
    assert tags["multi"]["size"] == declared
    assert tags["multi"]["platforms"] == [
        {"digest": child, "media_type": OCI_MANIFEST, "platform": "linux/amd64", "size": declared, "present": True},
        {
            "digest": missing_child,
            "media_type": OCI_MANIFEST,
            "platform": "linux/arm64",
            "size": None,
            "present": False,
        },
    ]
    detail = api("GET", f"/registries/{name}/repositories/app/manifests/{image}").json()
    assert detail["config"]["present"] is True
    assert [(layer["digest"], layer["present"]) for layer in detail["layers"]] == [
        (child_manifest["layers"][0]["digest"], True),
        (missing_blob, False),
    ]


def test_quotas_and_metering_count_only_the_bytes_stored_not_those_an_absent_blob_declares(api, client):
    name = registry(api, "sparse")
    repo = f"{name}/app"
    _, _, manifest = client.push_image(repo, None, layers=[b"stored layer"])
    stored = sum(d["size"] for d in [manifest["config"], *manifest["layers"]])
    manifest, _ = with_absent_layer(manifest, size=10**12)
    assert client.push_manifest(repo, "v1", manifest).status_code == 201

    usage = api("GET", f"/registries/{name}/usage").json()
    assert usage["storage"]["stored_bytes"] == stored and usage["storage"]["blobs"] == 2
    assert usage["quota"]["used_bytes"] == stored
    assert usage["repositories"] == [{"name": "app", "stored_bytes": stored, "blobs": 2, "tags": 1, "manifests": 2}]


def test_retention_deletes_a_sparse_index_by_its_tags_and_leaves_absent_children_alone(api, client):
    name = registry(api, "index-sparse")
    repo = f"{name}/app"
    old = index_of((absent(), "linux/amd64"))
    new = index_of((absent(), "linux/amd64"))
    assert client.push_manifest(repo, "old", old, OCI_INDEX).status_code == 201
    assert client.push_manifest(repo, "new", new, OCI_INDEX).status_code == 201
    assert api("PUT", f"/registries/{name}/retention", json={"keep_last": 1}).status_code == 200

    r = api("POST", f"/registries/{name}/retention/apply")
    assert r.status_code == 200, r.text
    result = r.json()
    assert [t["tag"] for t in result["tags"]] == ["old"], result
    assert [m["digest"] for m in result["manifests"]] == [sha256(json.dumps(old).encode())], result
    assert client.request("HEAD", f"/v2/{repo}/manifests/new").status_code == 200
    assert client.request("HEAD", f"/v2/{repo}/manifests/old").status_code == 404


# --- skopeo --------------------------------------------------------------------------------------


@pytest.mark.clients
def test_skopeo_copies_an_index_only_into_an_index_sparse_registry_and_a_strict_one_refuses_it(
    skopeo, srv, api, tmp_path
):
    source = OCILayout(tmp_path / "source")
    index = source.add_index([("linux", "amd64"), ("linux", "arm64")], files={"app.txt": b"sparse\n"}, tag="multi")
    creds = f"admin:{srv.token}"
    strict, sparse = registry(api), registry(api, "index-sparse", [])

    refused = skopeo(
        "copy",
        "--multi-arch",
        "index-only",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{source.root}:multi",
        f"docker://{srv.host}/{strict}/app:multi",
        check=False,
        timeout=300,
    )
    assert refused.returncode != 0
    assert "manifest blob unknown" in refused.stderr.lower(), refused.stderr
    for image in index.images.values():
        assert image.digest in refused.stderr, refused.stderr

    remote = f"docker://{srv.host}/{sparse}/app:multi"
    skopeo(
        "copy",
        "--multi-arch",
        "index-only",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{source.root}:multi",
        remote,
        timeout=300,
    )
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, remote, text=False).stdout
    assert raw == source.read_blob(index.digest)
    assert json.loads(raw)["mediaType"] == LAYOUT_INDEX
    client = RegistryClient(srv.url, srv.session())
    for image in index.images.values():
        assert client.request("HEAD", f"/v2/{sparse}/app/manifests/{image.digest}").status_code == 404
