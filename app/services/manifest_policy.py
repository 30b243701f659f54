"""The manifest validation policy: what a manifest push may reference without the registry holding
it, per registry (like Distribution 3's `validation.manifests.indexes.platforms`).

The spec leaves it to the registry: "A registry MAY reject a manifest of any type uploaded to the
manifest endpoint if it references manifests or blobs that do not exist in the registry." Modes:

- `strict` (the default, and what a registry without a policy does): every blob a manifest
  references (config and distributable layers) and every child manifest of an index must be in the
  repository; otherwise `MANIFEST_BLOB_UNKNOWN`, naming what is missing.
- `index-sparse`: an index's child manifests may be absent (`skopeo copy --multi-arch index-only`,
  mirrors that copy one platform of a multi-platform image). `required_platforms`
  (`os/architecture[/variant]`) names platforms whose children, when the index lists them, must be
  present all the same; a platform without a variant matches every variant. Blobs must be present.
- `sparse`: as `index-sparse`, and an image manifest's blobs may be absent too.

A manifest's `subject` never has to exist, whatever the mode (the spec: a registry "MUST accept"
it). The policy is read at each push: changing it never touches manifests already stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from app.db.models import Registry
from app.spec.errors import RegistryError

STRICT, INDEX_SPARSE, SPARSE = "strict", "index-sparse", "sparse"
MODES = (STRICT, INDEX_SPARSE, SPARSE)
MAX_PLATFORMS = 50
_PART = r"[a-z0-9][a-z0-9._-]{0,31}"
PLATFORM = re.compile(rf"^{_PART}/{_PART}(?:/{_PART})?\Z")
EXAMPLE = '{"mode": "index-sparse", "required_platforms": ["linux/amd64"]}'
MISSING_NAMED = 5  # digests an error message names; `detail.missing` has them all


@dataclass(frozen=True)
class Policy:
    mode: str = STRICT
    required_platforms: tuple[str, ...] = ()

    @property
    def children_may_be_absent(self) -> bool:
        return self.mode in (INDEX_SPARSE, SPARSE)

    @property
    def blobs_may_be_absent(self) -> bool:
        return self.mode == SPARSE

    def requires(self, platform: str | None) -> bool:
        """Whether an index's child for `platform` (`os/arch[/variant]`, or None) must be present."""
        if not self.children_may_be_absent:
            return True
        if platform is None:
            return False
        return any(
            platform == p or (p.count("/") == 1 and platform.startswith(p + "/")) for p in self.required_platforms
        )


def of(registry: Registry) -> Policy:
    """The registry's policy. No query."""
    if not registry.manifest_policy:
        return Policy()
    doc = json.loads(registry.manifest_policy)
    return Policy(doc.get("mode", STRICT), tuple(doc.get("required_platforms") or ()))


def validate(value: object) -> Policy:
    """A policy from a PATCH's `manifest_policy` (null: strict); INVALID naming the rule broken."""
    if value is None:
        return Policy()
    if not isinstance(value, dict):
        raise _invalid(f"manifest_policy must be an object such as {EXAMPLE}")
    unknown = sorted(set(value) - {"mode", "required_platforms"})
    if unknown:
        raise _invalid(f"manifest_policy has no field {unknown[0]!r}; fields: mode, required_platforms")
    mode = value.get("mode")
    if mode not in MODES:
        raise _invalid(f"manifest_policy.mode must be one of {list(MODES)}")
    platforms = value.get("required_platforms")
    if platforms is None:
        platforms = []
    if not isinstance(platforms, list) or len(platforms) > MAX_PLATFORMS:
        raise _invalid(
            f"manifest_policy.required_platforms must be a list of up to {MAX_PLATFORMS} platforms "
            'such as "linux/amd64" or "linux/arm/v7"'
        )
    for item in platforms:
        if not isinstance(item, str) or not PLATFORM.fullmatch(item):
            raise _invalid(
                f"manifest_policy.required_platforms: {str(item)[:80]!r} is not a platform "
                'os/architecture[/variant] (lowercase, such as "linux/arm64/v8")'
            )
    if platforms and mode == STRICT:
        raise _invalid(
            "manifest_policy.required_platforms only applies to the modes index-sparse and sparse "
            "(strict requires every child)"
        )
    return Policy(mode, tuple(sorted(set(platforms))))


def stored(policy: Policy) -> str | None:
    """The column's value: null for the default, so registries that never set one read as strict."""
    if policy == Policy():
        return None
    return json.dumps({"mode": policy.mode, "required_platforms": list(policy.required_platforms)})


def platform_name(platform: object) -> str | None:
    """`os/architecture[/variant]` of an index entry's `platform`, None when it names none."""
    if not isinstance(platform, dict) or not isinstance(platform.get("os"), str) or not platform.get("os"):
        return None
    name = f"{platform['os']}/{platform.get('architecture', '')}"
    variant = platform.get("variant")
    return name + (f"/{variant}" if isinstance(variant, str) and variant else "")


def missing_blobs(repository: str, missing: list[str]) -> RegistryError:
    return _unknown(
        f"this manifest references {_count(missing, 'blob')} not in repository {repository!r}: "
        f"{_names(missing)}; push {_them(missing)} first",
        missing,
    )


def missing_children(repository: str, missing: list[tuple[str, str | None]], policy: Policy) -> RegistryError:
    digests = [d for d, _ in missing]
    named = _names([f"{d} ({p})" if p else d for d, p in missing])
    if policy.children_may_be_absent:
        why = (
            f"; the registry's manifest policy ({policy.mode}) requires the platforms "
            f"{', '.join(policy.required_platforms)}: push {_them(digests)} first"
        )
    else:
        why = (
            f"; push {_them(digests)} first (or, to accept indexes without all their platforms' manifests, "
            "set the registry's manifest policy to index-sparse)"
        )
    return _unknown(
        f"this index references {_count(digests, 'manifest')} not in repository {repository!r}: {named}{why}", digests
    )


def _unknown(message: str, missing: list[str]) -> RegistryError:
    return RegistryError(
        "MANIFEST_BLOB_UNKNOWN", message, detail={"digest": missing[0], "missing": missing}, status=400
    )


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _them(items: list) -> str:
    return "it" if len(items) == 1 else "them"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MISSING_NAMED])
    return shown + (f" and {len(items) - MISSING_NAMED} more" if len(items) > MISSING_NAMED else "")


def _invalid(message: str) -> RegistryError:
    return RegistryError("INVALID", message, field="manifest_policy")
