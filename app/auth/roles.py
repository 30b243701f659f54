"""The role matrix of the product page. Roles are organization-wide.

| role      | push | pull | create registry | delete registry | browse |
| owner     | yes  | yes  | yes             | yes             | yes    |
| admin     | yes  | yes  | yes             | yes             | yes    |
| developer | yes  | yes  | yes             | yes             | yes    |
| reader    | no   | yes  | no              | no              | yes    |
| anonymous | no   | public registries only | no | no          | no     |
"""

from __future__ import annotations

PULL = "pull"
PUSH = "push"
DELETE = "delete"  # deleting content (manifests, tags, blobs) counts as pushing
CREATE_REGISTRY = "create_registry"
DELETE_REGISTRY = "delete_registry"
BROWSE = "browse"  # management browsing and `_catalog`

ROLES = ("owner", "admin", "developer", "reader")

_WRITE = frozenset({PUSH, PULL, DELETE, CREATE_REGISTRY, DELETE_REGISTRY, BROWSE})
MATRIX: dict[str, frozenset[str]] = {
    "owner": _WRITE,
    "admin": _WRITE,
    "developer": _WRITE,
    "reader": frozenset({PULL, BROWSE}),
}
ANONYMOUS_ON_PUBLIC = frozenset({PULL})


def allows(role: str | None, action: str) -> bool:
    return action in MATRIX.get(role or "", frozenset())
