"""oras-py (the PyPI `oras` library) against a real Berth server: artifacts and referrers.

These tests use oras-py's "basic" auth backend, which sends the credentials straight to `/v2/`
(Berth accepts Basic there). Its default "token" backend fetches one registry token for the
scope of the first challenge (a blob HEAD: pull) and then re-sends that same token when a push
answers 401 `insufficient_scope`, instead of asking for the push scope, so it cannot push to a
token-auth registry that scopes tokens (Distribution included); docker, podman, buildah and
skopeo exercise the token flow instead.
"""

from __future__ import annotations

import hashlib

import oras.client
import oras.oci
import pytest

pytestmark = pytest.mark.clients

SBOM_TYPE = "application/vnd.example.sbom+json"
SIGNATURE_TYPE = "application/vnd.example.signature+json"


@pytest.fixture
def oras_client(server, tmp_path, monkeypatch):
    """A logged-in client working in the test's tmp dir (oras-py wants files under the cwd)."""
    monkeypatch.chdir(tmp_path)
    client = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="basic")
    # oras-py's login writes a docker config; keep it out of the host's ~/.docker.
    client.login(
        username="admin",
        password=server.token,
        hostname=server.host,
        config_path=str(tmp_path / "oras-docker-config.json"),
    )
    return client


def _push(client, target: str, files: list[str], **kwargs):
    resp = client.push(target=target, files=files, quiet=True, **kwargs)
    assert resp.status_code == 201, resp.text
    return resp


def test_oras_push_and_pull_an_artifact_byte_for_byte(oras_client, server, registry_http, repo_name, tmp_path):
    payload = hashlib.sha256(repo_name.encode()).digest() * 100 + b"\x00\xff end"
    (tmp_path / "artifact.bin").write_bytes(payload)

    resp = _push(oras_client, f"{server.host}/{repo_name}:v1", ["artifact.bin"])
    digest = resp.headers["Docker-Content-Digest"]
    stored = registry_http.get_manifest(repo_name, "v1")
    assert stored.headers["Docker-Content-Digest"] == digest
    assert "sha256:" + hashlib.sha256(stored.content).hexdigest() == digest

    files = oras_client.pull(target=f"{server.host}/{repo_name}:v1", outdir=str(tmp_path / "out"))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["artifact.bin"]
    with open(files[0], "rb") as f:
        assert f.read() == payload


def test_oras_push_with_a_wrong_password_is_refused(server, repo_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifact.txt").write_text("nope\n")
    client = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="basic")
    # oras-py's login only records credentials; the registry is asked on the push.
    client.login(
        username="admin",
        password=server.token + "x",
        hostname=server.host,
        config_path=str(tmp_path / "oras-docker-config.json"),
    )
    with pytest.raises(Exception) as excinfo:
        client.push(target=f"{server.host}/{repo_name}:v1", files=["artifact.txt"], quiet=True)
    assert "unauthorized" in str(excinfo.value).lower()
    head = server.session().head(f"{server.url}/v2/{repo_name}/manifests/v1", timeout=30)
    assert head.status_code == 404


def test_oras_attached_artifacts_are_listed_by_the_referrers_api(
    oras_client, server, registry_http, repo_name, tmp_path
):
    (tmp_path / "image.txt").write_text("the subject\n")
    subject_resp = _push(oras_client, f"{server.host}/{repo_name}:v1", ["image.txt"])
    subject_manifest = registry_http.get_manifest(repo_name, "v1")
    subject = oras.oci.Subject(
        mediaType=subject_manifest.headers["Content-Type"],
        digest=subject_resp.headers["Docker-Content-Digest"],
        size=len(subject_manifest.content),
    )

    pushed = {}
    for name, artifact_type in (("sbom", SBOM_TYPE), ("signature", SIGNATURE_TYPE)):
        (tmp_path / f"{name}.json").write_text(f'{{"{name}": "{repo_name}"}}')
        (tmp_path / f"{name}-config.json").write_text("{}")
        resp = _push(
            oras_client,
            f"{server.host}/{repo_name}:{name}",
            [f"{name}.json"],
            manifest_config=f"{name}-config.json:{artifact_type}",
            subject=subject,
        )
        # A registry that processes `subject` says so on the manifest PUT.
        assert resp.headers.get("OCI-Subject") == subject.digest
        manifest = registry_http.get_manifest(repo_name, name)
        pushed[artifact_type] = {
            "mediaType": manifest.headers["Content-Type"],
            "digest": resp.headers["Docker-Content-Digest"],
            "size": len(manifest.content),
            "artifactType": artifact_type,
        }

    url = f"{server.url}/v2/{repo_name}/referrers/{subject.digest}"
    listing = registry_http.http.get(url, timeout=30)
    assert listing.status_code == 200, listing.text
    assert listing.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert "OCI-Filters-Applied" not in listing.headers
    manifests = listing.json()["manifests"]
    assert sorted(_descriptor(m) for m in manifests) == sorted(_descriptor(d) for d in pushed.values())

    filtered = registry_http.http.get(url, params={"artifactType": SBOM_TYPE}, timeout=30)
    assert filtered.status_code == 200, filtered.text
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [_descriptor(m) for m in filtered.json()["manifests"]] == [_descriptor(pushed[SBOM_TYPE])]

    none = registry_http.http.get(url, params={"artifactType": "application/x-nothing"}, timeout=30)
    assert none.status_code == 200 and none.json()["manifests"] == []

    # Referrers of the sbom itself: none.
    of_sbom = registry_http.http.get(f"{server.url}/v2/{repo_name}/referrers/{pushed[SBOM_TYPE]['digest']}", timeout=30)
    assert of_sbom.status_code == 200 and of_sbom.json()["manifests"] == []


def _descriptor(d: dict) -> tuple:
    return (d["mediaType"], d["digest"], d["size"], d["artifactType"])
