"""Roles through real clients: a developer pushes, a reader pulls and is refused a push with a
clear message, anonymous callers pull only from public registries, and Podman goes through the
OAuth2 refresh-token (POST) flow."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import requests

from tests.support.oci_layout import OCILayout, tagged

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def roles(server):
    owner = {"Authorization": f"Bearer {server.token}"}
    api = f"{server.url}/api/v1/orgs/default"

    def token(scope: str) -> str:
        r = requests.post(
            f"{api}/tokens", json={"name": f"{scope}-{secrets.token_hex(3)}", "scope": scope}, headers=owner, timeout=10
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    public = f"pubroles{secrets.token_hex(3)}"
    assert (
        requests.post(
            f"{api}/registries", json={"name": public, "visibility": "public"}, headers=owner, timeout=10
        ).status_code
        == 202
    )
    return {"developer": token("push"), "reader": token("pull"), "public": public}


def build(docker, tmp_path, image: str, text: str) -> None:
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "f.txt").write_text(text)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f.txt /f.txt\n")
    docker("build", "-t", image, str(context), timeout=300)


def test_docker_developer_pushes_reader_pulls_and_cannot_push(docker, server, roles, repo_name, tmp_path):
    image = f"{server.host}/{repo_name}:v1"
    build(docker, tmp_path, image, "by the developer")
    docker("login", server.host, "-u", "dev", "-p", roles["developer"], timeout=60)
    docker("push", image, timeout=300)
    docker("logout", server.host)
    docker("rmi", image)

    docker("login", server.host, "-u", "reader", "-p", roles["reader"], timeout=60)
    docker("pull", image, timeout=300)
    other = f"{server.host}/{repo_name}:reader-push"
    docker("tag", image, other)
    refused = docker("push", other, check=False, timeout=300)
    assert refused.returncode != 0
    output = (refused.stdout + refused.stderr).lower()
    assert "denied" in output and "may not push" in output, output


def test_docker_anonymous_pull_public_and_refused_private(docker, server, roles, repo_name, tmp_path):
    public_image = f"{server.host}/{roles['public']}/app:v1"
    private_image = f"{server.host}/{repo_name}:v1"
    build(docker, tmp_path, public_image, "public")
    docker("tag", public_image, private_image)
    docker("login", server.host, "-u", "dev", "-p", roles["developer"], timeout=60)
    docker("push", public_image, timeout=300)
    docker("push", private_image, timeout=300)
    docker("logout", server.host)
    docker("rmi", public_image, private_image)

    docker("pull", public_image, timeout=300)
    refused = docker("pull", private_image, check=False, timeout=300)
    assert refused.returncode != 0
    assert "unauthorized" in (refused.stdout + refused.stderr).lower()


def test_skopeo_creds_by_role(skopeo, server, roles, repo_name, tmp_path):
    layout = OCILayout(tmp_path / "src")
    image = layout.add_image({"a.txt": b"skopeo roles\n"}, tag="v1")
    remote = f"docker://{server.host}/{repo_name}:v1"
    skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"dev:{roles['developer']}", f"oci:{layout.root}:v1", remote
    )
    skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"r:{roles['reader']}", remote, f"oci:{tmp_path / 'back'}:v1"
    )
    assert tagged(tmp_path / "back", "v1").digest == image.digest
    refused = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"r:{roles['reader']}",
        f"oci:{layout.root}:v1",
        f"docker://{server.host}/{repo_name}:nope",
        check=False,
    )
    assert refused.returncode != 0 and "denied" in refused.stderr.lower()


def test_podman_through_the_oauth2_refresh_token_flow(podman, server, roles, repo_name, tmp_path):
    """The auth file holds only an identity token (a refresh token, as `docker login` stores it),
    so Podman must use the OAuth2 POST `grant_type=refresh_token` flow to push and pull."""
    r = requests.get(
        f"{server.url}/auth/token",
        auth=("dev", roles["developer"]),
        timeout=10,
        params={"service": server.host, "offline_token": "true", "client_id": "test"},
    )
    refresh = r.json()["refresh_token"]
    auth_file = podman.home / "auth.json"
    # As Docker writes it: "auth" is "<user>:" (no password), the identity token beside it.
    entry = {"auth": base64.b64encode(b"dev:").decode(), "identitytoken": refresh}
    auth_file.write_text(json.dumps({"auths": {server.host: entry}}))

    layout = OCILayout(tmp_path / "src")
    layout.add_image({"p.txt": b"podman oauth2\n"}, tag="v1")
    podman("pull", f"oci:{layout.root}:v1", timeout=300)
    image_id = podman("images", "-q", "--no-trunc").stdout.split()[0]
    remote = f"{server.host}/{repo_name}:v1"
    podman("push", "--tls-verify=false", "--authfile", str(auth_file), image_id, f"docker://{remote}", timeout=300)
    podman("rmi", "-a", "-f")
    podman("pull", "--tls-verify=false", "--authfile", str(auth_file), remote, timeout=300)
    assert podman("images", "-q").stdout.strip()
    # A bogus identity token is refused.
    auth_file.write_text(json.dumps({"auths": {server.host: {**entry, "identitytoken": refresh[:-4] + "AAAA"}}}))
    refused = podman("pull", "--tls-verify=false", "--authfile", str(auth_file), remote, check=False, timeout=300)
    assert refused.returncode != 0
