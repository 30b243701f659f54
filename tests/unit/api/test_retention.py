"""A retention policy and a run's result as the API shows them."""

from __future__ import annotations

from app.api.retention import render_policy, render_result, render_stored_policy
from app.db.models import Registry
from app.services import retention
from tests.unit.api.conftest import ISO, T, in_order

POLICY = {
    "keep_last": 3,
    "keep_patterns": ["v*"],
    "expire_days": None,
    "delete_untagged": True,
    "overrides": [{"repositories": "ci/*", "keep_patterns": ["x"], "expire_days": None}],
}


def test_a_policy_shows_every_rule_and_each_override_only_what_it_sets():
    assert in_order(
        render_policy(retention.parse_policy(POLICY)),
        {
            "keep_last": 3,
            "keep_patterns": ["v*"],
            "expire_days": None,
            "delete_untagged": True,
            "overrides": [{"repositories": "ci/*", "keep_patterns": ["x"], "expire_days": None}],
        },
    )


def test_a_registry_without_a_policy_shows_the_empty_one_unconfigured():
    assert in_order(
        render_stored_policy(None),
        {
            "keep_last": None,
            "keep_patterns": [],
            "expire_days": None,
            "delete_untagged": False,
            "overrides": [],
            "configured": False,
            "updated_at": None,
            "updated_by": None,
        },
    )


def test_a_stored_policy_shows_who_set_it_and_when(org):
    row = retention.set_policy(Registry.create(org=org, name="r"), retention.parse_policy(POLICY), "alice")
    rendered = render_stored_policy(row)
    assert {k: rendered[k] for k in ("configured", "updated_by")} == {"configured": True, "updated_by": "alice"}
    assert rendered["updated_at"] == row.updated_at.isoformat() + "Z"
    assert rendered["overrides"] == POLICY["overrides"] and rendered["delete_untagged"] is True


def test_a_result_with_its_summary():
    result = retention.Result(
        "r",
        T,
        retention.Policy(),
        dry_run=True,
        repositories=2,
        kept_tags=3,
        tags=[{"repository": "app", "tag": "old"}],
        manifests=[{"digest": "sha256:1", "size": 4}, {"digest": "sha256:2", "size": 6}],
    )
    assert in_order(
        render_result(result),
        {
            "registry": "r",
            "dry_run": True,
            "evaluated_at": ISO,
            "policy": render_policy(retention.Policy()),
            "repositories": 2,
            "kept_tags": 3,
            "tags": [{"repository": "app", "tag": "old"}],
            "manifests": [{"digest": "sha256:1", "size": 4}, {"digest": "sha256:2", "size": 6}],
            "summary": {"tags": 1, "manifests": 2, "manifest_bytes": 10},
            "gc": None,
        },
    )
