"""Anonymous pulls with a real client (skopeo): allowed from a public registry, refused from a
private one."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from tests.support.oci_layout import OCILayout, tagged

pytestmark = pytest.mark.clients


def create_registry(server, visibility: str) -> str:
    """A new registry in the `default` org through the management API, once it is ready."""
    name = f"anon-{secrets.token_hex(4)}"
    api = f"{server.url}/api/v1/orgs/default/registries"
    auth = {"Authorization": f"Bearer {server.token}"}
    resp = requests.post(api, json={"name": name, "visibility": visibility}, headers=auth, timeout=30)
    assert resp.status_code in (201, 202), resp.text
    deadline = time.monotonic() + 60
    while True:
        listed = requests.get(api, headers=auth, timeout=30)
        assert listed.status_code == 200, listed.text
        mine = [r for r in listed.json()["registries"] if r["name"] == name]
        assert mine and mine[0]["visibility"] == visibility, listed.text
        if mine[0]["status"] == "ready":
            return name
        assert mine[0]["status"] != "failed", mine[0]
        assert time.monotonic() < deadline, f"registry {name} not ready: {mine[0]}"
        time.sleep(0.2)


def push_image(skopeo, server, tmp_path, repository: str):
    layout = OCILayout(tmp_path / "source")
    image = layout.add_image({"hello.txt": f"{repository}\n".encode()}, tag="v1")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"admin:{server.token}",
        f"oci:{layout.root}:v1",
        f"docker://{server.host}/{repository}:v1",
        timeout=300,
    )
    return image


def test_anonymous_skopeo_pull_from_a_public_registry(skopeo, server, tmp_path):
    registry = create_registry(server, "public")
    image = push_image(skopeo, server, tmp_path, f"{registry}/app")

    out = tmp_path / "anonymous"
    pulled = skopeo(
        "copy",
        "--src-no-creds",
        "--src-tls-verify=false",
        f"docker://{server.host}/{registry}/app:v1",
        f"oci:{out}:v1",
        check=False,
        timeout=300,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert tagged(out, "v1").digest == image.digest


def test_anonymous_skopeo_pull_from_the_private_default_registry_is_refused(skopeo, server, repo_name, tmp_path):
    push_image(skopeo, server, tmp_path, repo_name)

    pulled = skopeo(
        "copy",
        "--src-no-creds",
        "--src-tls-verify=false",
        f"docker://{server.host}/{repo_name}:v1",
        f"oci:{tmp_path / 'anonymous'}:v1",
        check=False,
        timeout=300,
    )
    assert pulled.returncode != 0, pulled.stdout
    assert "unauthorized" in pulled.stderr.lower() or "authentication required" in pulled.stderr.lower(), pulled.stderr
    # The image is there: only the anonymous caller is refused.
    assert (
        server.session()
        .head(
            f"{server.url}/v2/{repo_name}/manifests/v1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        .status_code
        == 200
    )
