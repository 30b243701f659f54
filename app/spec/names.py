"""Repository names, tags and registry names: the grammar the spec allows, nothing else.

The grammars leave no room for `..`, `/` at either end, or other path tricks, which is what
keeps names and references safe to use in storage keys.
"""

from __future__ import annotations

import re

from app.spec.errors import RegistryError

# Every grammar here is checked with `fullmatch` and ends in `\Z`, not `$`: Python's `$` also
# matches before a final newline, so `re.match` on `^...$` lets "v1\n" through as a tag.
# distribution-spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
# A registry name is a DNS label: it becomes `<registry>.<domain>`.
REGISTRY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
MAX_REPOSITORY_LENGTH = 255
# Names that would collide with routes on the shared endpoint or with well-known hosts.
RESERVED_REGISTRY_NAMES = frozenset({"v2", "api", "auth", "www", "admin", "static", "_catalog"})


def check_repository(name: str) -> str:
    if len(name) > MAX_REPOSITORY_LENGTH or not REPOSITORY.fullmatch(name):
        raise RegistryError(
            "NAME_INVALID",
            f"invalid repository name {name[:300]!r}: lowercase components of [a-z0-9] "
            "separated by '.', '_', '__' or '-', joined by '/'",
        )
    return name


def is_tag(reference: str) -> bool:
    return TAG.fullmatch(reference) is not None


def check_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise RegistryError(
            "MANIFEST_INVALID" if tag else "NAME_INVALID",
            f"invalid tag {tag[:200]!r}: up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'",
        )
    return tag


def check_registry(name: str) -> str:
    if not REGISTRY.fullmatch(name or ""):
        raise RegistryError(
            "NAME_INVALID",
            f"invalid registry name {str(name)[:100]!r}: a DNS label of 1-63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit",
        )
    if name in RESERVED_REGISTRY_NAMES:
        raise RegistryError("NAME_INVALID", f"registry name {name!r} is reserved")
    return name
