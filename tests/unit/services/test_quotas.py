"""The SKU catalog: parsing BERTH_SKUS (JSON or a file), the default SKU, and refusals by name."""

from __future__ import annotations

import json

import pytest

from app.services import quotas


def test_the_builtin_catalog_and_its_default():
    catalog = quotas.parse_catalog("")
    assert catalog.names() == ["free", "team", "enterprise"] and catalog.default == "team"
    assert catalog.get("free").hard_limit_bytes == quotas.GiB
    assert catalog.get("enterprise").hard_limit_bytes is None
    assert quotas.parse_catalog("", "free").default == "free"


def test_a_catalog_from_json_or_a_file(tmp_path):
    skus = [
        {"name": "a", "included_bytes": 10, "hard_limit_bytes": 20},
        {"name": "b", "included_bytes": 100, "price_per_gib": 0.5, "default": True, "title": "Bee"},
    ]
    catalog = quotas.parse_catalog(json.dumps(skus))
    assert catalog.default == "b" and catalog.get("b").title == "Bee" and catalog.get("b").hard_limit_bytes is None
    path = tmp_path / "skus.json"
    path.write_text(json.dumps({"skus": skus[:1]}))
    catalog = quotas.parse_catalog(str(path))
    assert catalog.names() == ["a"] and catalog.default == "a"  # none marked: the first


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[]", "non-empty"),
        ("{not json", "not valid JSON"),
        ('[{"name": "a"}]', "included_bytes"),
        ('[{"name": "a", "included_bytes": -1}]', "included_bytes"),
        ('[{"name": "a", "included_bytes": 1, "hard_limit_bytes": "1G"}]', "hard_limit_bytes"),
        ('[{"name": "a", "included_bytes": 1, "price_per_gib": -2}]', "price_per_gib"),
        ('[{"name": "a", "included_bytes": 1}, {"name": "a", "included_bytes": 2}]', "twice"),
        ('[{"name": "a", "included_bytes": 1, "colour": "red"}]', "colour"),
        ("/nonexistent/skus.json", "cannot read"),
    ],
)
def test_a_bad_catalog_is_refused_by_name(raw, message):
    with pytest.raises(quotas.CatalogError, match=message):
        quotas.parse_catalog(raw)


def test_a_default_outside_the_catalog_is_refused():
    with pytest.raises(quotas.CatalogError, match="BERTH_DEFAULT_SKU"):
        quotas.parse_catalog("", "gold")


def test_sizes_read_well():
    assert quotas.human(1000) == "1000 bytes"
    assert quotas.human(1536) == "1.5 KiB" and quotas.human(quotas.GiB) == "1 GiB"
