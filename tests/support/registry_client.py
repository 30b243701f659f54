"""A tiny OCI distribution client over requests, for tests that walk the HTTP API itself."""

from __future__ import annotations

import hashlib
import json

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


class RegistryClient:
    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base = base_url
        self.s = session

    def url(self, path: str) -> str:
        return self.base + path if path.startswith("/") else path if path.startswith("http") else self.base + "/" + path

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.url(path), **kw)

    def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256(data)
        r = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(
        self, repo: str, ref: str, manifest: dict | bytes, media_type: str = OCI_MANIFEST
    ) -> requests.Response:
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        return self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type})

    def push_image(
        self, repo: str, tag: str | None, layers: list[bytes] | None = None, **extra
    ) -> tuple[str, bytes, dict]:
        """Push config + layers + manifest; returns (manifest digest, manifest bytes, manifest)."""
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        layers = layers if layers is not None else [b"layer-" + repo.encode()]
        config_digest = self.push_blob(repo, config)
        descriptors = []
        for layer in layers:
            descriptors.append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self.push_blob(repo, layer),
                    "size": len(layer),
                }
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": descriptors,
            **extra,
        }
        body = json.dumps(manifest).encode()
        digest = sha256(body)
        r = self.push_manifest(repo, tag or digest, body)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest
        return digest, body, manifest
