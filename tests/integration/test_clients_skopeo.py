"""skopeo against a real Berth server: OCI layouts copied in and out, single- and multi-platform."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.oci_layout import OCI_INDEX, OCI_MANIFEST, OCILayout, layer_files, tagged

pytestmark = pytest.mark.clients


def test_skopeo_copy_in_and_out_keeps_the_manifest(skopeo, server, registry_http, repo_name, tmp_path):
    content = f"skopeo {repo_name}\n".encode()
    source = OCILayout(tmp_path / "source")
    image = source.add_image({"hello.txt": content}, tag="v1")
    remote = f"docker://{server.host}/{repo_name}:v1"
    creds = f"admin:{server.token}"

    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{source.root}:v1", remote, timeout=300)

    head = registry_http.head_manifest(repo_name, "v1")
    assert head.status_code == 200, head.text
    assert head.headers["Docker-Content-Digest"] == image.digest
    assert head.headers["Content-Type"] == OCI_MANIFEST

    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, remote, text=False).stdout
    assert raw == source.read_blob(image.digest)

    back_dir = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, remote, f"oci:{back_dir}:v1", timeout=300)
    back = OCILayout(back_dir)
    assert tagged(back_dir, "v1").digest == image.digest
    for blob in (image.manifest, image.config, *image.layers):
        assert back.read_blob(blob.digest) == source.read_blob(blob.digest)
    assert layer_files(back.read_blob(image.layers[0].digest)) == {"hello.txt": content}


def test_skopeo_copy_all_pushes_an_index_and_each_platform_pulls_its_own(
    skopeo, server, registry_http, repo_name, tmp_path
):
    source = OCILayout(tmp_path / "source")
    index = source.add_index([("linux", "amd64"), ("linux", "arm64")], files={"app.txt": b"multi\n"}, tag="multi")
    remote = f"docker://{server.host}/{repo_name}:multi"
    creds = f"admin:{server.token}"
    amd64, arm64 = index.images["linux/amd64"], index.images["linux/arm64"]
    assert amd64.digest != arm64.digest

    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{source.root}:multi",
        remote,
        timeout=300,
    )

    # The tag resolves to the index itself, byte for byte.
    head = registry_http.head_manifest(repo_name, "multi")
    assert head.status_code == 200, head.text
    assert head.headers["Content-Type"] == OCI_INDEX
    assert head.headers["Docker-Content-Digest"] == index.digest
    body = registry_http.get_manifest(repo_name, "multi").content
    assert body == source.read_blob(index.digest)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == index.digest
    for image in (amd64, arm64):
        by_digest = registry_http.head_manifest(repo_name, image.digest)
        assert by_digest.status_code == 200
        assert by_digest.headers["Content-Type"] == OCI_MANIFEST

    for arch, image in (("arm64", arm64), ("amd64", amd64)):
        out = tmp_path / f"out-{arch}"
        skopeo(
            "copy",
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            remote,
            f"oci:{out}:x",
            timeout=300,
        )
        pulled = tagged(out, "x")
        assert pulled.media_type == OCI_MANIFEST
        assert pulled.digest == image.digest, f"{arch}: got {pulled.digest}"
        layer = OCILayout(out).read_blob(image.layers[0].digest)
        assert layer_files(layer) == {"app.txt": b"multi\n", "platform": f"linux/{arch}\n".encode()}
