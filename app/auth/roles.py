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
MANAGE_MEMBERS = "manage_members"
CREATE_TOKEN = "create_token"  # a token never carries more than its creator's role

ROLES = ("owner", "admin", "developer", "reader")

_WRITE = frozenset({PUSH, PULL, DELETE, CREATE_REGISTRY, DELETE_REGISTRY, BROWSE, CREATE_TOKEN})
MATRIX: dict[str, frozenset[str]] = {
    "owner": _WRITE | {MANAGE_MEMBERS},
    "admin": _WRITE | {MANAGE_MEMBERS},
    "developer": _WRITE,
    "reader": frozenset({PULL, BROWSE, CREATE_TOKEN}),
}
RANK = {"reader": 1, "developer": 2, "admin": 3, "owner": 4}
# Access-token scopes are shorthands for the role a token acts with.
SCOPES = {"pull": "reader", "push": "developer"}
ANONYMOUS_ON_PUBLIC = frozenset({PULL})


def allows(role: str | None, action: str) -> bool:
    return action in MATRIX.get(role or "", frozenset())


def higher(a: str | None, b: str | None) -> str | None:
    """The stronger of two roles (None is no role)."""
    return max((r for r in (a, b) if r), key=RANK.__getitem__, default=None)


def at_most(role: str, ceiling: str | None) -> bool:
    return ceiling is not None and RANK[role] <= RANK[ceiling]
