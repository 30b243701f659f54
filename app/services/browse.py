"""Browsing a registry: the repository folder tree, tags with sizes and platforms, manifests.

Sizes come from the manifests themselves (config + layers, as pushed); an index's size is each
platform's image and the total of the distinct blobs behind them. A registry whose manifest policy
is sparse (app/services/manifest_policy.py) may hold manifests whose children or blobs are absent:
each child and blob carries `present`, and an absent child adds nothing to its index's size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TypedDict

import peewee as pw

from app import untrusted_json
from app.db.models import Blob, Manifest, Registry, Repository, RepositoryBlob, Tag
from app.services import manifests, paging, repositories
from app.spec import digests
from app.spec.errors import RegistryError
from app.spec.media_types import INDEXES as INDEX_TYPES
from app.storage.base import BlobStore, blob_key

CONFIG_PREVIEW_BYTES = 1024 * 1024


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


@dataclass
class Node:
    path: str  # "team/" for a folder, "team/app" for a repository
    kind: str  # folder | repository
    name: str
    repositories: int = 0  # folders: repositories beneath
    repository: Repository | None = None
    stats: dict = field(default_factory=dict)


def tree(registry: Registry, prefix: str) -> list[Node]:
    """The entries directly under `prefix` ("" or "team/" or "team/app/"), sorted by path:
    folders for deeper names, repositories for names at this level."""
    if prefix and not prefix.endswith("/"):
        raise RegistryError("INVALID", "path must be a folder path ending in '/', such as 'team/'", field="path")
    names = Repository.select(Repository.id, Repository.name).where(
        (Repository.registry == registry) & repositories.visible()
    )
    if prefix:
        names = names.where(Repository.name.startswith(prefix))
    folders: dict[str, Node] = {}
    repos: list[Node] = []
    for repo in names:
        rest = repo.name[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if slash:
            node = folders.setdefault(head, Node(path=prefix + head + "/", kind="folder", name=head))
            node.repositories += 1
        else:
            repos.append(Node(path=repo.name, kind="repository", name=head, repository=repo))
    if prefix and not folders and not repos:
        raise RegistryError("NOT_FOUND", f"no repositories under {prefix!r}")
    return sorted([*folders.values(), *repos], key=lambda n: n.path)


def page_of_tree(registry: Registry, prefix: str, page: paging.Page) -> paging.Rows:
    """A page of `tree(registry, prefix)`, by path."""
    return paging.sorted_list(tree(registry, prefix), lambda node: node.path, page)


class RepositoryStats(TypedDict):
    tags: int
    size: int  # bytes of the distinct blobs linked to it
    last_push: str | None  # ISO 8601, UTC


def repository_stats(repositories: list[Repository]) -> dict[int, RepositoryStats]:
    """Tag count, stored size (distinct blobs linked to it) and last push, per repository id."""
    ids = [r.id for r in repositories]
    stats: dict[int, RepositoryStats] = {i: {"tags": 0, "size": 0, "last_push": None} for i in ids}
    if not ids:
        return stats
    last_push: dict[int, dt.datetime] = {}
    for repo_id, count, last in (
        Tag.select(Tag.repository, pw.fn.COUNT(Tag.id), pw.fn.MAX(Tag.updated_at))
        .where(Tag.repository.in_(ids))
        .group_by(Tag.repository)
        .tuples()
    ):
        stats[repo_id]["tags"] = count
        if last is not None:
            last_push[repo_id] = _as_dt(last)
    for repo_id, size in (
        RepositoryBlob.select(RepositoryBlob.repository, pw.fn.SUM(Blob.size))
        .join(Blob)
        .where(RepositoryBlob.repository.in_(ids))
        .group_by(RepositoryBlob.repository)
        .tuples()
    ):
        stats[repo_id]["size"] = int(size or 0)
    for repo_id, last in (
        Manifest.select(Manifest.repository, pw.fn.MAX(Manifest.created_at))
        .where(Manifest.repository.in_(ids))
        .group_by(Manifest.repository)
        .tuples()
    ):
        current = last_push.get(repo_id)
        if last is not None and (current is None or _as_dt(last) > current):
            last_push[repo_id] = _as_dt(last)
    for repo_id, when in last_push.items():
        stats[repo_id]["last_push"] = _iso(when)
    return stats


def _as_dt(value: str | dt.datetime) -> dt.datetime:
    """SQLite hands aggregates back as text."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def get_repository(registry: Registry, name: str) -> Repository:
    repo = Repository.get_or_none(
        (Repository.registry == registry) & (Repository.name == name) & repositories.visible()
    )
    if repo is None:
        raise RegistryError("NOT_FOUND", f"repository {name!r} not found in registry {registry.name!r}")
    return repo


class Sizes:
    """Sizes and platforms of manifests in one repository, each manifest parsed once."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._cache: dict[str, Manifest | None] = {}

    def manifest(self, digest: str) -> Manifest | None:
        if digest not in self._cache:
            self._cache[digest] = Manifest.get_or_none(
                (Manifest.repository == self.repository) & (Manifest.digest == digest)
            )
        return self._cache[digest]

    def describe(self, manifest: Manifest) -> dict:
        doc = _json(manifest)
        if manifest.media_type in INDEX_TYPES:
            platforms, blobs = [], {}
            for entry in doc.get("manifests", []):
                child = self.manifest(entry.get("digest", ""))
                child_blobs = _blobs(_json(child)) if child is not None else {}
                blobs.update(child_blobs)
                platforms.append(
                    {
                        "digest": entry.get("digest"),
                        "media_type": entry.get("mediaType"),
                        "platform": _platform(entry.get("platform")),
                        "size": sum(child_blobs.values()) if child is not None else None,
                        "present": child is not None,
                    }
                )
            return {"size": sum(blobs.values()), "platforms": platforms}
        return {"size": sum(_blobs(doc).values()), "platforms": []}


def _json(manifest: Manifest) -> dict:
    try:
        doc = untrusted_json.loads(bytes(manifest.content))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _blobs(doc: dict) -> dict[str, int]:
    """digest -> size of an image manifest's config and layers."""
    out: dict[str, int] = {}
    for d in [doc.get("config"), *(doc.get("layers") or [])]:
        if isinstance(d, dict) and isinstance(d.get("digest"), str) and isinstance(d.get("size"), int):
            out[d["digest"]] = d["size"]
    return out


def _platform(p) -> str | None:
    if not isinstance(p, dict) or not p.get("os"):
        return None
    value = f"{p.get('os')}/{p.get('architecture', '')}"
    return value + (f"/{p['variant']}" if p.get("variant") else "")


def page_of_tags(repository: Repository, page: paging.Page) -> paging.Rows:
    """The repository's tags with their manifests, by name."""
    return paging.keyset(Tag.select(Tag, Manifest).join(Manifest).where(Tag.repository == repository), Tag.name, page)


def manifest_detail(registry: Registry, repository: Repository, reference: str, store: BlobStore) -> dict:
    if not digests.is_digest(reference):
        raise RegistryError("INVALID", "give the manifest by digest, such as sha256:<64 hex>", field="digest")
    manifest = Sizes(repository).manifest(str(digests.parse(reference)))
    if manifest is None:
        raise RegistryError("NOT_FOUND", f"manifest {reference} not found in {repository.name!r}")
    sizes = Sizes(repository)
    doc = _json(manifest)
    body = {
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "artifact_type": manifest.artifact_type,
        "manifest_size": manifest.size,
        "subject": manifest.subject,
        "pushed_at": _iso(manifest.created_at),
        "tags": [t.name for t in manifest.tags.order_by(Tag.name)],
        **sizes.describe(manifest),
        "annotations": doc.get("annotations"),
        "referrers": referrers_of(repository, manifest.digest),
    }
    if manifest.media_type not in INDEX_TYPES:
        config = doc.get("config") if isinstance(doc.get("config"), dict) else None
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        held = _held(repository, [d.get("digest") for d in [config, *layers] if d])
        body["config"] = _descriptor(config, held) if config else None
        body["layers"] = [_descriptor(d, held) for d in layers]
        if config and body["config"]:
            body["config"]["image"] = _config_preview(registry, config, store)
    return body


def referrers_of(repository: Repository, digest: str) -> list[dict]:
    """The manifests whose subject is `digest` (signatures, SBOMs, attestations), in the
    management API's field names."""
    return [
        {
            "digest": d["digest"],
            "media_type": d["mediaType"],
            "artifact_type": d.get("artifactType"),
            "size": d["size"],
            "annotations": d.get("annotations"),
        }
        for d in manifests.referrers(repository, digest, None)
    ]


def _held(repository: Repository, wanted: list) -> set[str]:
    """Which of the digests `wanted` the repository holds (a blob linked to it)."""
    wanted = sorted({d for d in wanted if isinstance(d, str)})
    if not wanted:
        return set()
    return {
        d
        for (d,) in Blob.select(Blob.digest)
        .join(RepositoryBlob)
        .where((RepositoryBlob.repository == repository) & Blob.digest.in_(wanted))
        .tuples()
    }


def _descriptor(d: dict, held: set[str]) -> dict:
    return {
        "digest": d.get("digest"),
        "media_type": d.get("mediaType"),
        "size": d.get("size"),
        "annotations": d.get("annotations"),
        "present": d.get("digest") in held,
    }


def _config_preview(registry: Registry, config: dict, store: BlobStore) -> dict | None:
    """The image config's platform, creation time, entrypoint and labels, when it is a small
    JSON blob this registry holds."""
    size, digest = config.get("size"), config.get("digest")
    if not isinstance(size, int) or size > CONFIG_PREVIEW_BYTES or not digests.is_digest(str(digest)):
        return None
    try:
        with store.open_blob(blob_key(registry.id, str(digests.parse(digest)))) as f:
            doc = untrusted_json.loads(f.read(CONFIG_PREVIEW_BYTES + 1))  # anyone with push wrote it
    except (OSError, ValueError, RegistryError):
        return None
    if not isinstance(doc, dict):
        return None
    inner = doc.get("config")
    cfg = inner if isinstance(inner, dict) else {}
    return {
        "os": doc.get("os"),
        "architecture": doc.get("architecture"),
        "variant": doc.get("variant"),
        "created": doc.get("created"),
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "labels": cfg.get("Labels"),
    }
