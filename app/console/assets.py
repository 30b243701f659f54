"""`GET /console/` and the files under it: the console's HTML, CSS and ES modules.

Every file is read once at start, from `app/console/static/`; a request can only name one of
those (no path reaches the filesystem). Responses carry the console's Content-Security-Policy:
same-origin scripts, styles and fetches only, no inline code, never framed.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

import falcon

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load(root: Path = STATIC) -> dict[str, Asset]:
    """Relative path -> asset, for every file under `root`."""
    assets = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        assets[path.relative_to(root).as_posix()] = Asset(body, kind, hashlib.sha256(body).hexdigest()[:32])
    return assets


def console_headers(resp: falcon.Response) -> None:
    resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "no-referrer")


class ConsoleAssets:
    """`/console/` (the page) and `/console/{path}` (its modules and styles). Files are not
    fingerprinted, so browsers revalidate each (ETag, 304) and never run a stale module."""

    def __init__(self, assets: dict[str, Asset] | None = None) -> None:
        self.assets = assets if assets is not None else load()

    def on_get(self, req: falcon.Request, resp: falcon.Response, path: str = "index.html") -> None:
        asset = self.assets.get(path)
        console_headers(resp)
        if asset is None:
            raise falcon.HTTPNotFound(description=f"no console file {path!r}")
        resp.set_header("Cache-Control", "no-cache")
        resp.etag = f'"{asset.etag}"'
        if asset.etag in (req.if_none_match or []):  # falcon's ETag values are unquoted strings
            resp.status = falcon.HTTP_304
            return
        resp.content_type = asset.content_type
        resp.data = asset.body

    def on_head(self, req: falcon.Request, resp: falcon.Response, path: str = "index.html") -> None:
        self.on_get(req, resp, path)


class ConsoleRedirect:
    """`/console` -> `/console/`, so the page's relative URLs resolve under it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        console_headers(resp)
        raise falcon.HTTPMovedPermanently("/console/")
