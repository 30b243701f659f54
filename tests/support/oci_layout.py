"""Build OCI image layouts on disk in pure Python: the source images for skopeo, podman and buildah.

A layout is a directory with an `oci-layout` marker, an `index.json` naming tagged manifests
(`org.opencontainers.image.ref.name`) and content-addressed `blobs/sha256/<hex>`. Everything is
deterministic (fixed mtimes, sorted entries), so the same input always yields the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

# A fixed timestamp keeps tars, gzip headers and configs reproducible.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None

    def to_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True)
class Image:
    """A single-platform image: its manifest, config and layer descriptors."""

    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]
    platform: dict

    @property
    def digest(self) -> str:
        return self.manifest.digest


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform image: the index descriptor and one Image per `os/arch`."""

    index: Descriptor
    images: dict[str, Image] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.index.digest


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of regular files (parent directories included), reproducibly."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            info = tarfile.TarInfo(d + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


class OCILayout:
    """An OCI image layout directory: a new one to write images into, or an existing one to read."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        # An existing layout (e.g. one a client wrote) is opened as it is.
        if not (self.root / "oci-layout").exists():
            (self.root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        if not (self.root / "index.json").exists():
            self._write_index([])

    # -- blobs and the top-level index ------------------------------------------------------

    def add_blob(self, data: bytes, media_type: str, platform: dict | None = None) -> Descriptor:
        digest = sha256_digest(data)
        (self.blobs / digest.split(":", 1)[1]).write_bytes(data)
        return Descriptor(media_type, digest, len(data), platform)

    def read_blob(self, digest: str) -> bytes:
        return (self.blobs / digest.split(":", 1)[1]).read_bytes()

    def _read_index(self) -> list[dict]:
        return json.loads((self.root / "index.json").read_text())["manifests"]

    def _write_index(self, manifests: list[dict]) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        (self.root / "index.json").write_text(json.dumps(index, indent=2))

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        """Point `tag` at a manifest or index in index.json (replacing an older entry)."""
        manifests = [m for m in self._read_index() if m.get("annotations", {}).get(REF_NAME) != tag]
        entry = descriptor.to_json()
        entry["annotations"] = {REF_NAME: tag}
        manifests.append(entry)
        self._write_index(manifests)

    # -- images -----------------------------------------------------------------------------

    def add_image(
        self,
        files: dict[str, bytes],
        *,
        architecture: str = "amd64",
        os: str = "linux",
        tag: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Image:
        """A one-layer image holding `files` (path -> bytes); tagged in index.json if `tag`."""
        tar = layer_tar(files)
        diff_id = sha256_digest(tar)
        layer = self.add_blob(gzip_bytes(tar), OCI_LAYER_GZIP)
        config = {
            "created": CREATED,
            "architecture": architecture,
            "os": os,
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "tests.support.oci_layout"}],
        }
        config_desc = self.add_blob(canonical_json(config), OCI_CONFIG)
        manifest: dict = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.to_json()],
        }
        if annotations:
            manifest["annotations"] = annotations
        platform = {"architecture": architecture, "os": os}
        manifest_desc = self.add_blob(canonical_json(manifest), OCI_MANIFEST, platform)
        if tag:
            self.tag(Descriptor(OCI_MANIFEST, manifest_desc.digest, manifest_desc.size), tag)
        return Image(manifest_desc, config_desc, [layer], [diff_id], platform)

    def add_index(
        self,
        platforms: list[tuple[str, str]] = (("linux", "amd64"), ("linux", "arm64")),
        *,
        files: dict[str, bytes] | None = None,
        tag: str | None = None,
    ) -> ImageIndex:
        """An image index with one image per (os, architecture). Each image's layer also holds
        `/platform` naming its platform, so the per-platform manifests differ."""
        images: dict[str, Image] = {}
        for os_name, arch in platforms:
            content = dict(files or {})
            content["platform"] = f"{os_name}/{arch}\n".encode()
            images[f"{os_name}/{arch}"] = self.add_image(content, architecture=arch, os=os_name)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [image.manifest.to_json() for image in images.values()],
        }
        index_desc = self.add_blob(canonical_json(index), OCI_INDEX)
        if tag:
            self.tag(index_desc, tag)
        return ImageIndex(index_desc, images)


def tagged(root: Path, tag: str) -> Descriptor:
    """The descriptor index.json of an existing layout (e.g. one skopeo wrote) names `tag` by.

    A layout with a single untagged entry (what some tools write) resolves to that entry."""
    manifests = json.loads((Path(root) / "index.json").read_text())["manifests"]
    matches = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) == tag]
    if not matches and len(manifests) == 1 and not manifests[0].get("annotations", {}).get(REF_NAME):
        matches = manifests
    if len(matches) != 1:
        raise KeyError(f"{tag!r} is not one entry in {root}/index.json: {manifests}")
    m = matches[0]
    return Descriptor(m["mediaType"], m["digest"], m["size"], m.get("platform"))


def layer_files(blob: bytes) -> dict[str, bytes]:
    """The regular files in a layer (a tar, gzip-compressed or not), by path without `./` or `/`."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                out[name.lstrip("/")] = tar.extractfile(member).read()
    return out
