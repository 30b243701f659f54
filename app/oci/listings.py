"""`/v2/<name>/tags/list` and `/v2/_catalog`: paginated, lexically ordered, with `Link`."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import falcon

from app.auth import roles
from app.auth.gate import is_allowed
from app.db.models import Registry
from app.oci.resolved_request import RepositoryRequest, ResolvedRequest
from app.services import endpoints, listings, repositories
from app.services.listings import TagLists
from app.spec.errors import RegistryError


def _page_params(req: falcon.Request) -> tuple[int | None, str | None]:
    raw = req.get_param("n")
    if raw is None and "n" in falcon.uri.parse_query_string(req.query_string, keep_blank=True):
        raw = ""  # falcon drops blank values: `?n=` is refused, not read as "no limit"
    n = None
    if raw is not None:
        # isdigit() alone takes "²" and "①", which int() then refuses: ASCII digits only.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise RegistryError("PAGINATION_NUMBER_INVALID", f"n must be a non-negative integer, not {raw[:20]!r}")
        n = int(raw)
    return n, req.get_param("last")


def _link(resp: falcon.Response, path: str, n: int, last: str) -> None:
    resp.set_header("Link", f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"')


def _known(repository, resolved: RepositoryRequest) -> None:
    """A repository without tags is still known when it holds something; one that holds nothing
    (only an upload session in progress, or everything deleted) is not, as in the catalog."""
    if not repositories.is_visible(repository):
        raise RegistryError("NAME_UNKNOWN", f"repository {resolved.target.repository!r} not found")


class TagsResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL}

    def __init__(self, tag_lists: TagLists) -> None:
        self.tag_lists = tag_lists

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        repository = repositories.get(resolved.registry, resolved.target.repository)
        n, last = _page_params(req)
        if n is None and not last:  # the whole list: a large repository's is encoded once, cached
            array = self.tag_lists.all_tags_json(repository)
            if array == b"[]":
                _known(repository, resolved)
            resp.content_type = falcon.MEDIA_JSON
            resp.data = b'{"name":' + json.dumps(resolved.target.name).encode() + b',"tags":' + array + b"}"
            return
        tags, more = self.tag_lists.tags(repository, n, last)
        if not tags:
            _known(repository, resolved)
        if more and tags and n is not None:
            _link(resp, resolved.target.url("tags/list"), n, tags[-1])
        resp.media = {"name": resolved.target.name, "tags": tags}


class CatalogResource:
    """On a registry's own host: its repositories. On the shared endpoint: every repository the
    caller may browse, named `<registry>/<repository>` as path-form clients address them."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: ResolvedRequest) -> None:
        n, last = _page_params(req)
        host_registry = req.context.registry_header or endpoints.registry_named_by(req.host, self.domain)
        if host_registry is not None:
            registry = Registry.get_or_none(Registry.name == host_registry)
            if registry is None:
                raise RegistryError("NAME_UNKNOWN", f"registry {host_registry!r} not found")
            if not is_allowed(resolved.subject, roles.BROWSE, registry):
                raise RegistryError(
                    "UNAUTHORIZED" if resolved.subject.anonymous else "DENIED",
                    "browsing this registry's catalog is not allowed",
                )
            visible = [registry]
        else:
            if resolved.subject.anonymous:
                raise RegistryError("UNAUTHORIZED", "the catalog is not available anonymously")
            visible = [r for r in Registry.select() if is_allowed(resolved.subject, roles.BROWSE, r)]
        names, more = listings.repositories(visible, host_registry is None, n, last)
        if more and names and n is not None:
            _link(resp, "/v2/_catalog", n, names[-1])
        resp.media = {"repositories": names}
