"""Immutable tags: a registry may name repository patterns whose tags, once pushed, never move.

The default write policy allows overwrites: a push of `app:1` moves the tag to the new digest.
A registry's `immutable_tags` is a list of glob patterns over repository names (`fnmatch`
rules, case-sensitive: `*` matches any characters, `/` included; `?` one character; `[...]`
a set), e.g. `["release/*", "prod-*", "base"]`. In a repository that matches one of them:

- pushing a tag that does not exist yet works, and pushing the same digest again under it
  works (a retried push, or a CI job re-running);
- pushing a different digest under an existing tag is refused: 403 `DENIED`, naming the tag,
  the digest it holds and the way out (a new tag);
- deleting the tag (`DELETE /v2/<repo>/manifests/<tag>`) is refused, and so is deleting by
  digest a manifest that still carries tags there (that would delete the tags with it).

Untagged manifests of such repositories may still be deleted. Changing the patterns (PATCH
registry) takes effect for the next request.
"""

from __future__ import annotations

import fnmatch
import json
import re

from app.db.models import Manifest, Registry, Repository, Tag, utcnow
from app.spec.errors import RegistryError

MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 255
PATTERN = re.compile(r"^[!-~]{1,255}\Z")  # repository names are ASCII; so are the glob characters


def patterns(registry: Registry) -> list[str]:
    return json.loads(registry.immutable_tags or "[]")


def applies(registry: Registry, repository: str) -> bool:
    """Whether tags in `repository` (a name inside the registry) are immutable. No query."""
    if not registry.immutable_tags:
        return False
    return any(fnmatch.fnmatchcase(repository, p) for p in patterns(registry))


def validate(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PATTERNS:
        raise RegistryError(
            "INVALID",
            f'immutable_tags must be a list of up to {MAX_PATTERNS} repository patterns such as "release/*"',
            field="immutable_tags",
        )
    for item in value:
        if not isinstance(item, str) or not PATTERN.fullmatch(item):
            raise RegistryError(
                "INVALID",
                f"immutable_tags: {str(item)[:80]!r} is not a repository pattern "
                f"(1-{MAX_PATTERN_LENGTH} printable ASCII characters, no spaces)",
                field="immutable_tags",
            )
    return sorted(set(value))


def pin(repository: Repository, tag: str, manifest: Manifest) -> None:
    """Point `tag` at `manifest` only if it points nowhere yet (or there already); else DENIED.

    Insert-if-absent then read back, inside the caller's transaction: of two pushes racing for
    a new tag, one wins and the other is refused, never an overwrite."""
    Tag.insert(repository=repository, name=tag, manifest=manifest, updated_at=utcnow()).on_conflict_ignore().execute()
    held = (
        Manifest.select(Manifest.id, Manifest.digest)
        .join(Tag, on=(Tag.manifest == Manifest.id))
        .where((Tag.repository == repository) & (Tag.name == tag))
        .first()
    )
    if held is not None and held.id != manifest.id:
        raise RegistryError(
            "DENIED",
            f"tag {tag!r} is immutable in repository {repository.name!r} and already points at {held.digest}; "
            "push under a new tag instead (immutable-tag patterns are set on the registry)",
            detail={"tag": tag, "digest": held.digest},
        )


def refuse_delete(repository: Repository, reference: str, tag: bool) -> None:
    """DENIED for deleting a tag, or a tagged manifest, of an immutable repository."""
    if tag:
        exists = Tag.select().where((Tag.repository == repository) & (Tag.name == reference)).exists()
        if exists:
            raise RegistryError(
                "DENIED",
                f"tag {reference!r} is immutable in repository {repository.name!r} and cannot be deleted",
                detail={"tag": reference},
            )
        return
    tags = [
        t.name
        for t in Tag.select(Tag.name)
        .join(Manifest)
        .where((Manifest.repository == repository) & (Manifest.digest == reference))
        .order_by(Tag.name)
        .limit(5)
    ]
    if tags:
        raise RegistryError(
            "DENIED",
            f"manifest {reference} carries immutable tags ({', '.join(tags)}) in "
            f"repository {repository.name!r} and cannot be deleted",
            detail={"tags": tags},
        )
