"""A real SQLite database for renderers that read what their object links to."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import Organization
from app.db.setup import open_database

T = dt.datetime(2026, 11, 29, 12, 0, 0, 123456)
ISO = "2026-11-29T12:00:00.123456Z"


@pytest.fixture
def org(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield Organization.create(name="o", created_at=T)
    db.close()


def in_order(rendered: dict, expected: dict) -> bool:
    """Equal, keys in the same order too: the JSON clients read is the same byte for byte."""
    return rendered == expected and list(rendered) == list(expected)
