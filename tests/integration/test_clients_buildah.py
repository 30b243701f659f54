"""Buildah against a real Berth server: build from scratch, commit, push, pull back."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.clients


def test_buildah_build_push_and_pull_back_keep_the_digest(buildah, server, registry_http, repo_name, tmp_path):
    """`buildah from scratch` + `buildah copy` work here as root with vfs storage (no overlay
    mount needed), so this is the real build path, not a layout re-push."""
    content = f"buildah {repo_name}\n".encode()
    (tmp_path / "hello.txt").write_bytes(content)
    remote = f"{server.host}/{repo_name}:v1"
    creds = f"admin:{server.token}"

    container = buildah("from", "scratch").stdout.strip()
    buildah("copy", container, tmp_path / "hello.txt", "/hello.txt")
    buildah("config", "--cmd", "/hello.txt", container)
    image_id = buildah("commit", "-q", container, remote).stdout.strip().splitlines()[-1]
    buildah("rm", container)

    digestfile = tmp_path / "pushed.digest"
    buildah("push", "--tls-verify=false", "--creds", creds, "--digestfile", digestfile, remote, timeout=300)
    pushed_digest = digestfile.read_text().strip()
    assert pushed_digest.startswith("sha256:") and len(pushed_digest) == 71

    head = registry_http.head_manifest(repo_name, "v1")
    assert head.status_code == 200, head.text
    assert head.headers["Docker-Content-Digest"] == pushed_digest
    assert registry_http.files(repo_name, "v1") == {"hello.txt": content}
    config = registry_http.get_manifest(repo_name, "v1").json()["config"]
    assert config["digest"] == "sha256:" + image_id
    assert json.loads(registry_http.get_blob(repo_name, config["digest"]))["config"]["Cmd"] == ["/hello.txt"]

    buildah("rmi", "--all", "--force")
    assert buildah("images", "-q").stdout.strip() == ""

    buildah("pull", "--tls-verify=false", "--creds", creds, remote, timeout=300)
    pulled_digest = buildah("inspect", "--type", "image", "--format", "{{.FromImageDigest}}", remote).stdout.strip()
    assert pulled_digest == pushed_digest
    assert buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", remote).stdout.strip() == image_id
