"""Retention policies: which tags and manifests of a registry go, why, and deleting exactly those.

A registry has at most one policy, a JSON document:

    {"keep_last": 10, "keep_patterns": ["latest", "v*"], "expire_days": 30, "delete_untagged": true,
     "overrides": [{"repositories": "ci/*", "keep_last": 3, "expire_days": 7}]}

Rules, per repository:
- The rules that apply to a repository are the registry's, with the fields of the first override
  whose `repositories` glob matches the repository's name put over them (fields an override
  leaves out are inherited; `null` turns a rule off, `[]` drops the patterns).
- Globs (`fnmatch`, case-sensitive): `*` any run of characters (`/` included), `?` one, `[...]`
  a set.
- Tags. Only a policy that limits tags (`keep_last` or `expire_days` set) deletes any. A tag is
  then deleted unless ANY rule keeps it:
  `keep_last N`: it is among the N most recently pushed tags of its repository (push time is the
  tag's last push; ties by name); `keep_patterns`: its name matches one of the globs;
  `expire_days D`: it was pushed, or its manifest was pulled (by any tag or by digest), within D
  days. `keep_patterns` alone deletes nothing. Tags sharing one digest are judged one by one:
  every tag counts for `keep_last`, and a pull of the digest counts for all of them.
- Manifests. What goes is exactly what garbage collection (app/services/gc.py) removes once
  those tags are gone: a manifest no remaining tag reaches (through index children and
  referrers of reached manifests), pushed before the collection's grace period. So deleting a
  tag never deletes a manifest another kept tag points at, an index's child, or a referrer
  (signature, SBOM) of a kept manifest. Manifests this run leaves untagged are deleted by the
  run itself; manifests that were unreachable already are deleted by it too when
  `delete_untagged` is true, and otherwise by the collection that follows (listed with
  `"by": "gc"`).
- A preview is the same evaluation without deleting. Apply evaluates each repository again under
  its lock (the one pushes and deletes take), deletes what that evaluation lists, and records one
  `retention.delete` audit event per tag and manifest; the caller then runs garbage collection.

Pull times: `Manifest.pulled_at`, noted by `PullTimes.record` on a manifest GET or HEAD only when
the stored value is more than PULL_RESOLUTION old, and written a moment later by a background
thread, so the hot read path never writes (nor waits for the write lock) itself.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace

import peewee as pw

from app.db.models import Manifest, ManifestReference, Registry, Repository, RetentionPolicy, Tag, utcnow
from app.db.setup import repository_lock, serialize, transaction
from app.services import audit, gc, immutable_tags, listings
from app.services.periodic import Periodic
from app.spec.errors import RegistryError

log = logging.getLogger("berth.retention")

PULL_RESOLUTION = dt.timedelta(hours=1)
RULE_FIELDS = ("keep_last", "keep_patterns", "expire_days", "delete_untagged")
MAX_PATTERNS = 100
MAX_OVERRIDES = 100
MAX_KEEP_LAST = 100_000
MAX_EXPIRE_DAYS = 36_500
# Tag and repository names are ASCII without spaces; so are the glob characters. A pattern with a
# newline or control character could never match one, and would only be stored to mislead.
_TAG_GLOB = re.compile(r"[!-~]{1,128}")
_REPOSITORY_GLOB = re.compile(r"[!-~]{1,255}")
EXAMPLE = '{"keep_last": 10, "keep_patterns": ["latest", "v*"], "expire_days": 30, "delete_untagged": true}'


# --- the policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    keep_last: int | None = None
    keep_patterns: tuple[str, ...] = ()
    expire_days: int | None = None
    delete_untagged: bool = False

    @property
    def limits_tags(self) -> bool:
        return self.keep_last is not None or self.expire_days is not None

    def document(self) -> dict:
        return {
            "keep_last": self.keep_last,
            "keep_patterns": list(self.keep_patterns),
            "expire_days": self.expire_days,
            "delete_untagged": self.delete_untagged,
        }


@dataclass(frozen=True)
class Override:
    repositories: str
    fields: dict  # the rule fields it sets, already validated

    def document(self) -> dict:
        return {
            "repositories": self.repositories,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in self.fields.items()},
        }


@dataclass(frozen=True)
class Policy:
    rules: Rules = Rules()
    overrides: tuple[Override, ...] = ()

    def for_repository(self, name: str) -> Rules:
        for override in self.overrides:
            if fnmatch.fnmatchcase(name, override.repositories):
                return replace(self.rules, **override.fields)
        return self.rules

    def document(self) -> dict:
        """The policy as the JSON object `parse_policy` reads: what is stored, and what is audited."""
        return {**self.rules.document(), "overrides": [o.document() for o in self.overrides]}


def _invalid(message: str, name: str) -> RegistryError:
    return RegistryError("INVALID", message, field=name)


def _rule_fields(body: dict, where: str) -> dict:
    """The rule fields present in `body`, validated; `where` prefixes field names in errors."""
    out: dict = {}
    if "keep_last" in body:
        v = body["keep_last"]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_KEEP_LAST):
            raise _invalid(f"keep_last must be null or an integer from 0 to {MAX_KEEP_LAST}", where + "keep_last")
        out["keep_last"] = v
    if "expire_days" in body:
        v = body["expire_days"]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_EXPIRE_DAYS):
            raise _invalid(f"expire_days must be null or an integer from 1 to {MAX_EXPIRE_DAYS}", where + "expire_days")
        out["expire_days"] = v
    if "keep_patterns" in body:
        v = body["keep_patterns"]
        if v is None:
            v = []
        if (
            not isinstance(v, list)
            or len(v) > MAX_PATTERNS
            or not all(isinstance(p, str) and _TAG_GLOB.fullmatch(p) for p in v)
        ):
            raise _invalid(
                f"keep_patterns must be a list of at most {MAX_PATTERNS} tag globs (1-128 printable "
                "ASCII characters, no spaces) "
                'such as ["latest", "v*"]',
                where + "keep_patterns",
            )
        out["keep_patterns"] = tuple(dict.fromkeys(v))
    if "delete_untagged" in body:
        v = body["delete_untagged"]
        if not isinstance(v, bool):
            raise _invalid("delete_untagged must be true or false", where + "delete_untagged")
        out["delete_untagged"] = v
    return out


def parse_policy(body: object) -> Policy:
    """A policy document from a request body (or the stored JSON); INVALID naming the field."""
    if not isinstance(body, dict):
        raise RegistryError("INVALID", f"send a JSON object such as {EXAMPLE}")
    allowed = set(RULE_FIELDS) | {"overrides"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"unknown field {unknown[0]!r}; fields: {sorted(allowed)}", unknown[0])
    rules = Rules(**_rule_fields(body, ""))
    raw = body.get("overrides")
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_OVERRIDES:
        raise _invalid(
            f"overrides must be a list of at most {MAX_OVERRIDES} objects such as "
            '{"repositories": "ci/*", "expire_days": 7}',
            "overrides",
        )
    overrides = []
    for i, item in enumerate(raw):
        where = f"overrides[{i}]."
        if not isinstance(item, dict):
            raise _invalid(
                'each override is an object such as {"repositories": "ci/*", "expire_days": 7}', f"overrides[{i}]"
            )
        unknown = sorted(set(item) - set(RULE_FIELDS) - {"repositories"})
        if unknown:
            raise _invalid(
                f"unknown field {unknown[0]!r} in an override; fields: {sorted(set(RULE_FIELDS) | {'repositories'})}",
                where + unknown[0],
            )
        pattern = item.get("repositories")
        if not isinstance(pattern, str) or not _REPOSITORY_GLOB.fullmatch(pattern):
            raise _invalid(
                'repositories is required: a glob of repository names such as "ci/*" (1-255 '
                "printable ASCII characters, no spaces)",
                where + "repositories",
            )
        overrides.append(Override(pattern, _rule_fields(item, where)))
    return Policy(rules, tuple(overrides))


def get_policy(registry: Registry) -> RetentionPolicy | None:
    return RetentionPolicy.get_or_none(RetentionPolicy.registry == registry)


def policy_of(row: RetentionPolicy) -> Policy:
    return parse_policy(json.loads(row.rules))


def set_policy(registry: Registry, policy: Policy, updated_by: str) -> RetentionPolicy:
    document = json.dumps(policy.document(), sort_keys=True)
    now = utcnow()
    RetentionPolicy.insert(registry=registry, rules=document, updated_at=now, updated_by=updated_by).on_conflict(
        conflict_target=[RetentionPolicy.registry],
        update={
            RetentionPolicy.rules: document,
            RetentionPolicy.updated_at: now,
            RetentionPolicy.updated_by: updated_by,
        },
    ).execute()
    return RetentionPolicy.get(RetentionPolicy.registry == registry)  # the row just written


def delete_policy(registry: Registry) -> bool:
    return bool(RetentionPolicy.delete().where(RetentionPolicy.registry == registry).execute())


# --- pull times --------------------------------------------------------------------------------


class PullTimes:
    """The pull times noted in this process, written in batches by a background thread from
    `start` until `stop`, which writes what is left (the composition root's shutdown)."""

    def __init__(self) -> None:
        self._pulls: set[int] = set()
        self._lock = threading.Lock()
        self._waiting = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, manifest: Manifest) -> None:
        """Note that `manifest` was pulled, when the value loaded with it is older than
        PULL_RESOLUTION. The write happens on the background thread a moment later (batched), so
        a pull neither waits for the database's write lock nor fails because of it."""
        last = manifest.pulled_at
        if last is not None and utcnow() - last < PULL_RESOLUTION:
            return
        with self._lock:
            self._pulls.add(manifest.id)
        self._waiting.set()

    def write(self) -> None:
        """Write the pull times noted so far: one UPDATE for the batch."""
        with self._lock:
            batch = sorted(self._pulls)
            self._pulls.clear()
        if not batch:
            return
        now = utcnow()
        try:
            for start in range(0, len(batch), 500):
                Manifest.update(pulled_at=now).where(
                    Manifest.id.in_(batch[start : start + 500])
                    & (Manifest.pulled_at.is_null() | (Manifest.pulled_at < now - PULL_RESOLUTION))
                ).execute()
        except pw.PeeweeException:
            log.warning("could not record the pull times of %d manifests", len(batch), exc_info=True)

    def start(self) -> PullTimes:
        self._thread = threading.Thread(target=self._write_forever, name="pull-times", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._waiting.set()
        if self._thread is not None:
            self._thread.join(10)
        self.write()

    def _write_forever(self) -> None:
        while not self._stop.is_set():
            self._waiting.wait()
            self._waiting.clear()
            self.write()


# --- evaluation (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class TagRow:
    id: int
    name: str
    manifest_id: int
    pushed_at: dt.datetime


@dataclass(frozen=True)
class ManifestRow:
    id: int
    digest: str
    media_type: str
    size: int
    created_at: dt.datetime
    pulled_at: dt.datetime | None
    subject: str | None
    children: tuple[str, ...] = ()


@dataclass
class Decision:
    """What goes in one repository, and why."""

    tags: list[tuple[TagRow, str, str]] = field(default_factory=list)  # (row, digest, reason)
    manifests: list[tuple[ManifestRow, str, str]] = field(default_factory=list)  # (row, reason, by)
    kept_tags: int = 0


def _tag_reason(rules: Rules, tag: TagRow, last_used: dt.datetime) -> str:
    why = []
    if rules.keep_last is not None:
        why.append(f"not among the {rules.keep_last} most recently pushed tags")
    if rules.keep_patterns:
        why.append(f"matches none of {', '.join(rules.keep_patterns)}")
    if rules.expire_days is not None:
        why.append(f"not pushed or pulled for {rules.expire_days} days (last {_time(last_used)})")
    return "; ".join(why)


def evaluate(
    rules: Rules, tags: list[TagRow], manifests: list[ManifestRow], now: dt.datetime, grace: dt.timedelta
) -> Decision:
    """The tags and manifests of one repository that `rules` delete (see the module docstring)."""
    decision = Decision()
    by_id = {m.id: m for m in manifests}
    doomed_tags: set[int] = set()
    if rules.limits_tags:
        newest = sorted(sorted(tags, key=lambda t: t.name), key=lambda t: t.pushed_at, reverse=True)
        recent = {t.id for t in newest[: rules.keep_last]} if rules.keep_last is not None else set()
        horizon = now - dt.timedelta(days=rules.expire_days) if rules.expire_days is not None else None
        for tag in sorted(tags, key=lambda t: t.name):
            manifest = by_id.get(tag.manifest_id)
            pulled = manifest.pulled_at if manifest is not None else None
            last_used = max(tag.pushed_at, pulled) if pulled else tag.pushed_at
            kept = (
                tag.id in recent
                or any(fnmatch.fnmatchcase(tag.name, p) for p in rules.keep_patterns)
                or (horizon is not None and last_used >= horizon)
            )
            if kept:
                continue
            doomed_tags.add(tag.id)
            decision.tags.append((tag, manifest.digest if manifest else "", _tag_reason(rules, tag, last_used)))
    decision.kept_tags = len(tags) - len(doomed_tags)

    # Reachability, by garbage collection's own rule, over the tags that remain.
    by_digest = {m.digest: m for m in manifests}
    referrers: dict[str, list[ManifestRow]] = defaultdict(list)
    for m in manifests:
        if m.subject:
            referrers[m.subject].append(m)
    cutoff = now - grace
    remaining = {t.manifest_id for t in tags if t.id not in doomed_tags}
    roots = {m.id for m in manifests if m.id in remaining or m.created_at >= cutoff}
    reachable = gc.reachable(manifests, roots, {m.id: m.children for m in manifests})
    tagged_before = {t.manifest_id for t in tags}
    # What a manifest that goes reached: its children and referrers go with it, for that reason.
    reached_from: dict[int, str] = {}
    for m in manifests:
        if m.id in reachable:
            continue
        for nxt in [by_digest.get(d) for d in m.children]:
            if nxt is not None:
                reached_from.setdefault(nxt.id, f"a child of {m.digest}, which goes")
        for nxt in referrers.get(m.digest, []):
            reached_from.setdefault(nxt.id, f"a referrer of {m.digest}, which goes")
    for m in sorted(manifests, key=lambda m: m.digest):
        if m.id in reachable:
            continue
        if m.id in tagged_before:
            gone = sorted(t.name for t in tags if t.manifest_id == m.id)
            decision.manifests.append(
                (m, f"untagged once {', '.join(gone)} go; nothing kept references it", "retention")
            )
        elif m.id in reached_from:
            decision.manifests.append((m, reached_from[m.id] + "; nothing kept references it", "retention"))
        else:
            decision.manifests.append(
                (m, "untagged; nothing kept references it", "retention" if rules.delete_untagged else "gc")
            )
    return decision


# --- evaluation against the database ----------------------------------------------------------


def _snapshot(repository: Repository) -> tuple[list[TagRow], list[ManifestRow]]:
    tags = [
        TagRow(i, n, m, u)
        for i, n, m, u in Tag.select(Tag.id, Tag.name, Tag.manifest, Tag.updated_at)
        .where(Tag.repository == repository)
        .tuples()
    ]
    children: dict[int, list[str]] = defaultdict(list)
    for manifest_id, digest in (
        ManifestReference.select(ManifestReference.manifest, ManifestReference.digest)
        .join(Manifest)
        .where((Manifest.repository == repository) & (ManifestReference.kind == "manifest"))
        .tuples()
    ):
        children[manifest_id].append(digest)
    manifests = [
        ManifestRow(
            m.id, m.digest, m.media_type, m.size, m.created_at, m.pulled_at, m.subject, tuple(children.get(m.id, ()))
        )
        for m in Manifest.select(
            Manifest.id,
            Manifest.digest,
            Manifest.media_type,
            Manifest.size,
            Manifest.created_at,
            Manifest.pulled_at,
            Manifest.subject,
        ).where(Manifest.repository == repository)
    ]
    return tags, manifests


@dataclass
class Result:
    registry: str
    evaluated_at: dt.datetime
    policy: Policy
    dry_run: bool
    repositories: int = 0
    kept_tags: int = 0
    tags: list[dict] = field(default_factory=list)
    manifests: list[dict] = field(default_factory=list)
    gc: dict | None = None

    def add(self, repository: Repository, decision: Decision) -> None:
        self.repositories += 1
        self.kept_tags += decision.kept_tags
        for tag, digest, reason in decision.tags:
            self.tags.append(
                {
                    "repository": repository.name,
                    "tag": tag.name,
                    "digest": digest,
                    "pushed_at": _time(tag.pushed_at),
                    "reason": reason,
                }
            )
        for m, reason, by in decision.manifests:
            self.manifests.append(
                {
                    "repository": repository.name,
                    "digest": m.digest,
                    "media_type": m.media_type,
                    "size": m.size,
                    "pushed_at": _time(m.created_at),
                    "pulled_at": _time(m.pulled_at),
                    "reason": reason,
                    "by": by,
                }
            )


def _rules(policy: Policy, registry: Registry, repository: Repository) -> Rules:
    """The rules for one repository. Tags in a repository with immutable tags are never deleted
    by retention either (what the registry refuses a user, it does not do itself); its untagged
    manifests still follow."""
    rules = policy.for_repository(repository.name)
    if immutable_tags.applies(registry, repository.name):
        rules = replace(rules, keep_last=None, expire_days=None)
    return rules


def _repositories(registry: Registry) -> list[Repository]:
    return list(Repository.select().where(Repository.registry == registry).order_by(Repository.name))


def preview(registry: Registry, policy: Policy, *, grace: dt.timedelta, now: dt.datetime | None = None) -> Result:
    now = now or utcnow()
    result = Result(registry.name, now, policy, dry_run=True)
    for repository in _repositories(registry):
        tags, manifests = _snapshot(repository)
        result.add(repository, evaluate(_rules(policy, registry, repository), tags, manifests, now, grace))
    return result


@dataclass(frozen=True)
class Actor:
    org_id: int
    name: str
    client_ip: str | None = None
    request_id: str | None = None


def apply(
    registry: Registry,
    policy: Policy,
    actor: Actor,
    *,
    grace: dt.timedelta,
    now: dt.datetime | None = None,
    tag_lists: listings.TagLists | None = None,
) -> Result:
    """Delete what the policy selects, one repository at a time under its lock, and audit each
    deletion. The evaluation happens again inside the lock, so a push racing the run is either
    seen (and judged) or waits; what is deleted is exactly what that evaluation lists.
    `tag_lists`: the cache told of the repositories whose tags went."""
    now = now or utcnow()
    result = Result(registry.name, now, policy, dry_run=False)
    for repository in _repositories(registry):
        rules = _rules(policy, registry, repository)
        with transaction():
            serialize(repository_lock(repository.id))
            tags, manifests = _snapshot(repository)
            decision = evaluate(rules, tags, manifests, now, grace)
            if decision.tags:
                Tag.delete().where(Tag.id.in_([t.id for t, _, _ in decision.tags])).execute()
            ours = [m.id for m, _, by in decision.manifests if by == "retention"]
            if ours:  # the rest ("by": "gc") go in the collection that follows
                Manifest.delete().where(Manifest.id.in_(ours)).execute()
        if (decision.tags or ours) and tag_lists is not None:
            tag_lists.changed(repository)
        before = len(result.tags), len(result.manifests)
        result.add(repository, decision)
        for item in result.tags[before[0] :]:
            _audit(actor, registry, item, tag=item["tag"])
        for item in result.manifests[before[1] :]:
            if item["by"] == "retention":
                _audit(actor, registry, item, tag=None)
    log.info(
        "retention of %s: %d tags and %d manifests deleted",
        registry.name,
        len(result.tags),
        len(result.manifests),
        extra={"registry": registry.name},
    )
    return result


def _audit(actor: Actor, registry: Registry, item: dict, tag: str | None) -> None:
    audit.record(
        org_id=actor.org_id,
        actor=actor.name,
        action="retention.delete",
        status=200,
        registry=registry.name,
        repository=item["repository"],
        digest=item["digest"],
        tag=tag,
        detail={"reason": item["reason"]},
        client_ip=actor.client_ip,
        request_id=actor.request_id,
    )


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


# --- the scheduled run -------------------------------------------------------------------------

SCHEDULE_ACTOR = "retention-schedule"


def apply_stored(
    registry: Registry,
    store,
    *,
    grace: dt.timedelta,
    upload_expiry: dt.timedelta,
    tag_lists: listings.TagLists | None = None,
) -> Result | None:
    """Apply a registry's stored policy as the schedule does (None without a policy): the
    deletions audited under SCHEDULE_ACTOR, one `retention.apply` record, then garbage
    collection."""
    row = get_policy(registry)
    if row is None or registry.status == "deleting":
        return None
    result = apply(registry, policy_of(row), Actor(registry.org_id, SCHEDULE_ACTOR), grace=grace, tag_lists=tag_lists)
    report = gc.collect(registry, store, grace=grace, upload_expiry=upload_expiry)
    result.gc = {
        "manifests_deleted": len(report.manifests),
        "blobs_deleted": len(report.blobs),
        "bytes_freed": report.bytes_freed,
    }
    audit.record(
        org_id=registry.org_id,
        actor=SCHEDULE_ACTOR,
        action="retention.apply",
        status=200,
        registry=registry.name,
        detail={"tags": len(result.tags), "manifests": len(result.manifests), "gc": result.gc},
    )
    return result


class Schedule(Periodic):
    """Applies every registry's stored retention policy every `interval` (`BERTH_RETENTION_INTERVAL`;
    0: only when asked through the API or CLI), in a background thread of `berth serve`. Two
    replicas applying the same policy at once do the same deletions once: each repository is
    evaluated again under its lock."""

    thread_name = "retention-schedule"

    def __init__(
        self,
        store,
        *,
        interval: dt.timedelta,
        grace: dt.timedelta,
        upload_expiry: dt.timedelta,
        tag_lists: listings.TagLists | None = None,
    ) -> None:
        super().__init__(interval)
        self.store, self.grace, self.upload_expiry = store, grace, upload_expiry
        self.tag_lists = tag_lists

    def run_once(self) -> list[Result]:
        results = []
        registries = list(
            Registry.select()
            .join(RetentionPolicy, on=(RetentionPolicy.registry == Registry.id))
            .where(Registry.status != "deleting")
            .order_by(Registry.id)
        )
        for registry in registries:
            if self.stopping:
                break
            try:
                result = apply_stored(
                    registry, self.store, grace=self.grace, upload_expiry=self.upload_expiry, tag_lists=self.tag_lists
                )
            except Exception:  # noqa: BLE001 - one registry's failure must not stop the others
                log.exception("scheduled retention of %s failed", registry.name)
                continue
            if result is not None:
                results.append(result)
        return results
