"""A storage SKU as `GET /api/v1/skus` shows it."""

from __future__ import annotations

from app.api.usage import render_sku
from app.services import quotas
from tests.unit.api.conftest import in_order


def test_a_sku_with_its_limits_price_and_whether_it_is_the_default():
    sku = quotas.Sku("team", "Team", included_bytes=50, hard_limit_bytes=None, price_per_gib=0.1, currency="EUR")
    assert in_order(
        render_sku(sku, default=True),
        {
            "name": "team",
            "title": "Team",
            "included_bytes": 50,
            "hard_limit_bytes": None,
            "price_per_gib": 0.1,
            "currency": "EUR",
            "default": True,
        },
    )
    assert render_sku(sku, default=False)["default"] is False
