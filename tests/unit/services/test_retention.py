"""The retention evaluation as a pure function: rules, overrides, reachability, reasons."""

import datetime as dt

import pytest

from app.services.retention import ManifestRow, Rules, TagRow, evaluate, parse_policy
from app.spec.errors import RegistryError

NOW = dt.datetime(2026, 11, 29, 12, 0, 0)
HOUR = dt.timedelta(hours=1)


def days(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def manifest(
    i: int, *, age: float = 100, pulled: float | None = None, subject: str | None = None, children: tuple[str, ...] = ()
) -> ManifestRow:
    return ManifestRow(
        i,
        f"sha256:{i:064x}",
        "application/vnd.oci.image.manifest.v1+json",
        100 + i,
        days(age),
        days(pulled) if pulled is not None else None,
        subject,
        children,
    )


def tag(i: int, name: str, manifest_id: int, age: float = 100) -> TagRow:
    return TagRow(i, name, manifest_id, days(age))


def gone(decision) -> tuple[list[str], list[int]]:
    return [t.name for t, _, _ in decision.tags], sorted(m.id for m, _, _ in decision.manifests)


def test_no_limiting_rule_deletes_no_tag():
    tags = [tag(1, "a", 1), tag(2, "b", 2)]
    ms = [manifest(1), manifest(2)]
    assert gone(evaluate(Rules(keep_patterns=("x*",)), tags, ms, NOW, HOUR)) == ([], [])
    assert gone(evaluate(Rules(), tags, ms, NOW, HOUR)) == ([], [])


def test_any_keep_rule_keeps():
    ms = [manifest(i) for i in range(1, 5)]
    tags = [
        tag(1, "v1", 1, age=50),
        tag(2, "newest", 2, age=1),
        tag(3, "pulled", 3, age=50),
        tag(4, "stale", 4, age=50),
    ]
    ms[2] = manifest(3, pulled=2)
    rules = Rules(keep_last=1, keep_patterns=("v*",), expire_days=30)
    decision = evaluate(rules, tags, ms, NOW, HOUR)
    assert gone(decision) == (["stale"], [4])
    assert decision.kept_tags == 3
    reason = decision.tags[0][2]
    assert reason.startswith(
        "not among the 1 most recently pushed tags; matches none of v*; not pushed or pulled "
        "for 30 days (last 2026-10-10T12:00:00Z)"
    )


def test_keep_last_ties_are_broken_by_name():
    ms = [manifest(1)]
    tags = [tag(1, "b", 1, age=5), tag(2, "a", 1, age=5), tag(3, "c", 1, age=5)]
    assert gone(evaluate(Rules(keep_last=2), tags, ms, NOW, HOUR)) == (["c"], [])


def test_a_tag_sharing_a_digest_with_a_kept_tag_goes_but_the_manifest_stays():
    ms = [manifest(1)]
    tags = [tag(1, "v1", 1), tag(2, "nightly", 1)]
    decision = evaluate(Rules(expire_days=30, keep_patterns=("v*",)), tags, ms, NOW, HOUR)
    assert gone(decision) == (["nightly"], [])
    assert decision.tags[0][1] == ms[0].digest


def test_reachability_children_referrers_and_grace():
    child1, child2 = manifest(1), manifest(2)
    index = manifest(3, children=(child1.digest, child2.digest))
    image = manifest(4)
    signature = manifest(5, subject=image.digest)
    lone, fresh = manifest(6), manifest(7, age=0.01)
    ms = [child1, child2, index, image, signature, lone, fresh]
    tags = [tag(1, "multi", 3), tag(2, "release", 4)]
    decision = evaluate(Rules(delete_untagged=True), tags, ms, NOW, HOUR)
    assert gone(decision) == ([], [6])
    assert decision.manifests[0][2] == "retention"
    decision = evaluate(Rules(), tags, ms, NOW, HOUR)
    assert [(m.id, by) for m, _, by in decision.manifests] == [(6, "gc")]  # the collection would remove it

    decision = evaluate(Rules(keep_last=0, delete_untagged=True), tags, ms, NOW, HOUR)
    reasons = {m.id: (why, by) for m, why, by in decision.manifests}
    assert set(reasons) == {1, 2, 3, 4, 5, 6}  # not the fresh one: within the grace period
    assert reasons[3][0] == "untagged once multi go; nothing kept references it"
    assert reasons[1][0].startswith(f"a child of {index.digest}")
    assert reasons[5][0].startswith(f"a referrer of {image.digest}")
    assert all(by == "retention" for _, by in reasons.values())


def test_a_fresh_index_keeps_its_children():
    child = manifest(1)
    index = manifest(2, age=0.01, children=(child.digest,))
    assert gone(evaluate(Rules(delete_untagged=True), [], [child, index], NOW, HOUR)) == ([], [])


def test_overrides_inherit_and_the_first_match_wins():
    policy = parse_policy(
        {
            "keep_last": 5,
            "keep_patterns": ["v*"],
            "expire_days": 30,
            "overrides": [
                {"repositories": "ci/tools/*", "keep_last": None},
                {"repositories": "ci/*", "keep_last": 1, "keep_patterns": []},
            ],
        }
    )
    assert policy.for_repository("app") == Rules(5, ("v*",), 30, False)
    assert policy.for_repository("ci/app") == Rules(1, (), 30, False)
    assert policy.for_repository("ci/tools/lint") == Rules(None, ("v*",), 30, False)
    assert policy.for_repository("CI/app") == Rules(5, ("v*",), 30, False)  # case-sensitive
    assert parse_policy(policy.document()) == policy


@pytest.mark.parametrize(
    "body, field",
    [
        ({"keep_last": -1}, "keep_last"),
        ({"keep_last": 1.5}, "keep_last"),
        ({"expire_days": 0}, "expire_days"),
        ({"keep_patterns": [""]}, "keep_patterns"),
        ({"delete_untagged": 1}, "delete_untagged"),
        ({"overrides": {}}, "overrides"),
        ({"overrides": ["ci/*"]}, "overrides[0]"),
        ({"overrides": [{"repositories": ""}]}, "overrides[0].repositories"),
        ({"nope": 1}, "nope"),
    ],
)
def test_invalid_policies_name_the_field(body, field):
    with pytest.raises(RegistryError) as e:
        parse_policy(body)
    assert e.value.field == field
