"""The Docker CLI (and a private dockerd) against a real Berth server: login, build, push, pull."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.support.oci_layout import layer_files

pytestmark = pytest.mark.clients

PUSHED = re.compile(r"^v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.M)


def test_docker_login_accepts_the_token_and_refuses_a_wrong_password(docker, server):
    wrong = docker("login", server.host, "-u", "admin", "-p", server.token + "x", check=False, timeout=60)
    assert wrong.returncode != 0, wrong.stdout
    assert "401" in wrong.stderr or "unauthorized" in wrong.stderr.lower(), wrong.stderr
    config_path = docker.extra["config_dir"] / "config.json"
    saved = json.loads(config_path.read_text()) if config_path.exists() else {}
    assert server.host not in saved.get("auths", {}), "a refused login must not be saved"

    ok = docker("login", server.host, "-u", "admin", "-p", server.token, timeout=60)
    assert "Login Succeeded" in ok.stdout
    # The token service hands Docker a refresh token at login (offline_token=true), which Docker
    # stores instead of the password and trades for registry tokens later.
    saved = json.loads(config_path.read_text())["auths"][server.host]
    assert base64.b64decode(saved["auth"]).decode() == "admin:"
    assert server.token not in config_path.read_text()
    refresh = saved["identitytoken"]
    import requests

    r = requests.post(
        f"{server.url}/auth/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": server.host,
            "scope": "repository:default/x:pull",
            "client_id": "test",
        },
    )
    assert r.status_code == 200 and r.json()["access_token"]


def test_docker_build_push_rmi_pull_keeps_the_digest(docker, server, registry_http, repo_name, tmp_path):
    content = f"hello from {repo_name}\n".encode()
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_bytes(content)
    # FROM scratch + COPY only: RUN needs container networking this daemon does not have.
    (context / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n')
    image = f"{server.host}/{repo_name}:v1"

    docker("login", server.host, "-u", "admin", "-p", server.token, timeout=60)
    docker("build", "-t", image, str(context), timeout=300)

    push = docker("push", image, timeout=300)
    match = PUSHED.search(push.stdout)
    assert match, f"no digest line in docker push output:\n{push.stdout}"
    pushed_digest, pushed_size = match.group(1), int(match.group(2))

    head = registry_http.head_manifest(repo_name, "v1")
    assert head.status_code == 200, head.text
    assert head.headers["Docker-Content-Digest"] == pushed_digest
    assert int(head.headers["Content-Length"]) == pushed_size
    assert head.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert registry_http.files(repo_name, "v1") == {"hello.txt": content}

    docker("rmi", image, timeout=120)
    gone = docker("image", "inspect", image, check=False, timeout=60)
    assert gone.returncode != 0, "the image must be gone locally before the pull"

    pull = docker("pull", image, timeout=300)
    assert f"Digest: {pushed_digest}" in pull.stdout, pull.stdout
    inspect = json.loads(docker("image", "inspect", image, timeout=60).stdout)[0]
    assert inspect["RepoDigests"] == [f"{server.host}/{repo_name}@{pushed_digest}"]

    # What came back is the file that went in: copy it out of a (never started) container.
    container = docker("create", image, timeout=120).stdout.strip()
    try:
        archive = docker("cp", f"{container}:/hello.txt", "-", text=False, timeout=120).stdout
    finally:
        docker("rm", container, check=False, timeout=60)
    assert layer_files(archive) == {"hello.txt": content}
