"""Podman against a real Berth server: an image from an OCI layout, pushed, removed, pulled back."""

from __future__ import annotations

import pytest

from tests.support.oci_layout import OCILayout

pytestmark = pytest.mark.clients


def test_podman_push_and_pull_back_keep_the_digest(podman, server, registry_http, repo_name, tmp_path):
    content = f"podman {repo_name}\n".encode()
    layout_dir = tmp_path / "layout"
    image = OCILayout(layout_dir).add_image({"hello.txt": content}, tag="v1")
    remote = f"{server.host}/{repo_name}:v1"

    pulled = podman("pull", "-q", f"oci:{layout_dir}:v1")
    image_id = pulled.stdout.strip().splitlines()[-1]
    # Podman's image id is the config digest: the layout's image arrived unchanged.
    assert "sha256:" + image_id == image.config.digest

    podman("tag", image_id, remote)
    digestfile = tmp_path / "pushed.digest"
    podman(
        "push",
        "--tls-verify=false",
        "--creds",
        f"admin:{server.token}",
        "--digestfile",
        digestfile,
        remote,
        timeout=300,
    )
    pushed_digest = digestfile.read_text().strip()
    assert pushed_digest.startswith("sha256:") and len(pushed_digest) == 71

    head = registry_http.head_manifest(repo_name, "v1")
    assert head.status_code == 200, head.text
    assert head.headers["Docker-Content-Digest"] == pushed_digest
    assert registry_http.files(repo_name, "v1") == {"hello.txt": content}

    podman("rmi", "--all", "--force")
    assert podman("images", "-q").stdout.strip() == ""

    podman("pull", "--tls-verify=false", "--creds", f"admin:{server.token}", remote, timeout=300)
    digest = podman("image", "inspect", "--format", "{{.Digest}}", remote).stdout.strip()
    assert digest == pushed_digest
    repo_digests = podman("image", "inspect", "--format", "{{json .RepoDigests}}", remote).stdout
    assert f"{server.host}/{repo_name}@{pushed_digest}" in repo_digests
    # Same config, so the same image id as the one built from the layout.
    assert podman("image", "inspect", "--format", "{{.Id}}", remote).stdout.strip() == image_id
