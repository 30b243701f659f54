"""Browsing under `/api/v1/orgs/{org}/registries/{registry}/repositories`:

    .../repositories[?path=team/]             the folder tree, one level at a time
    .../repositories/{repo}                   one repository
    .../repositories/{repo}/tags              its tags: digest, media type, size, platforms
    .../repositories/{repo}/manifests/{digest} one manifest: config and layers

Repository names contain '/', so everything after `repositories/` is one path parameter; a
trailing `/tags` or `/manifests/<digest>` says what is asked (URL-encoded slashes work too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from app.api import pagination
from app.auth import roles
from app.services import browse, immutable_tags, metering
from app.spec.errors import RegistryError
from app.spec.names import check_repository
from app.storage.base import BlobStore

if TYPE_CHECKING:
    from app.db.models import Tag


def render_tag(tag: Tag, sizes: browse.Sizes) -> dict:
    described = sizes.describe(tag.manifest)
    return {
        "name": tag.name,
        "digest": tag.manifest.digest,
        "media_type": tag.manifest.media_type,
        "artifact_type": tag.manifest.artifact_type,
        "size": described["size"],
        "manifest_size": tag.manifest.size,
        "platforms": described["platforms"],
        "pushed_at": _iso(tag.updated_at),
    }


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def _repository_entry(node: browse.Node, stats: dict[int, browse.RepositoryStats]) -> dict:
    if node.kind == "folder":
        return {"type": "folder", "name": node.name, "path": node.path, "repositories": node.repositories}
    assert node.repository is not None  # browse.tree gives every repository node its row
    return {"type": "repository", "name": node.name, "path": node.path, **stats.get(node.repository.id, {})}


class RepositoriesResource:
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str) -> None:
        prefix = req.get_param("path") or ""
        rows = browse.page_of_tree(req.context.registry, prefix, pagination.page_of(req, str))
        stats = browse.repository_stats([n.repository for n in rows.items if n.kind == "repository"])
        resp.media = {
            "path": prefix,
            **pagination.body("entries", [_repository_entry(n, stats) for n in rows.items], rows),
        }
        pagination.link(req, resp, rows)


class RepositoryPathResource:
    permissions = {"GET": roles.BROWSE}

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, org: str, registry: str, rest: str) -> None:
        registry_ = req.context.registry
        if rest.endswith("/tags"):
            repo = self._repository(registry_, rest[: -len("/tags")])
            sizes = browse.Sizes(repo)
            rows = browse.page_of_tags(repo, pagination.page_of(req, str))
            resp.media = {
                "repository": repo.name,
                **pagination.body("tags", [render_tag(t, sizes) for t in rows.items], rows),
            }
            pagination.link(req, resp, rows)
            return
        name, marker, digest = rest.rpartition("/manifests/")
        if marker:
            repo = self._repository(registry_, name)
            resp.media = {"repository": repo.name, **browse.manifest_detail(registry_, repo, digest, self.store)}
            return
        repo = self._repository(registry_, rest)
        counts = metering.repositories(registry_, repo.name)[0]  # stored_bytes, blobs, tags, manifests
        resp.media = {
            "name": repo.name,
            "created_at": repo.created_at.isoformat() + "Z",
            **browse.repository_stats([repo])[repo.id],
            **{k: v for k, v in counts.items() if k != "name"},
            "immutable_tags": immutable_tags.applies(registry_, repo.name),
        }

    def _repository(self, registry, name: str):
        try:
            check_repository(name)
        except RegistryError as e:
            raise RegistryError("INVALID", e.message, field="repository") from None
        return browse.get_repository(registry, name)
