"""The data plane's routes, declared once.

Repository names contain slashes, so `/v2/<name>/...` is matched with one anchored pattern (as
Distribution does) rather than Falcon's URI templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?:"
    r"(?P<tags>tags/list)"
    r"|manifests/(?P<manifest>[^/]+)"
    r"|(?P<uploads>blobs/uploads/?)(?P<upload>[^/]+)?"
    r"|blobs/(?P<blob>[^/]+)"
    r"|referrers/(?P<referrers>[^/]+)"
    r")",
    re.DOTALL,  # a newline in a name or reference must reach the name checks, not fall through
)


@dataclass(frozen=True)
class Route:
    kind: str  # base | catalog | tags | manifest | uploads | upload | blob | referrers
    name: str = ""
    arg: str = ""


def match(path: str) -> Route | None:
    if path in ("/v2", "/v2/"):
        return Route("base")
    if path == "/v2/_catalog":
        return Route("catalog")
    m = _ROUTE.fullmatch(path)
    if m is None:
        return None
    name = m["name"]
    if m["tags"]:
        return Route("tags", name)
    if m["manifest"] is not None:
        return Route("manifest", name, m["manifest"])
    if m["uploads"] is not None:
        return Route("upload", name, m["upload"]) if m["upload"] else Route("uploads", name)
    if m["blob"] is not None:
        return Route("blob", name, m["blob"])
    return Route("referrers", name, m["referrers"])
