"""Keyset pages over a real SQLite table and over a sorted list: every row once, in order, and a
cursor of the wrong kind refused rather than compared with the key."""

from __future__ import annotations

import pytest

from app.db.models import AuditEvent, Organization
from app.db.setup import open_database
from app.services import paging
from app.spec.errors import RegistryError


@pytest.fixture
def org(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield Organization.create(name="o")
    db.close()


def pages(query, key, limit: int, **kwargs) -> list[list]:
    seen, after = [], None
    while True:
        rows = paging.keyset(query, key, paging.Page(limit, after), **kwargs)
        seen.append([getattr(r, key.name) for r in rows.items])
        if rows.next_key is None:
            return seen
        after = rows.next_key


def test_pages_run_in_key_order_each_row_once(org):
    for name in ("c", "a", "e", "b", "d"):
        Organization.create(name=name)
    query = Organization.select().where(Organization.name != "o")
    assert pages(query, Organization.name, 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert pages(query, Organization.name, 5) == [["a", "b", "c", "d", "e"]]  # exactly full: no next page


def test_descending_pages_start_from_the_highest_key(org):
    ids = [AuditEvent.create(org=org, actor="a", action="x", outcome="success").id for _ in range(5)]
    assert pages(AuditEvent.select(), AuditEvent.id, 2, descending=True) == [ids[:2:-1], ids[2:0:-1], ids[:1]]


def test_a_page_after_a_key_leaves_out_that_key_and_those_before(org):
    for name in ("a", "b", "c"):
        Organization.create(name=name)
    rows = paging.keyset(Organization.select(), Organization.name, paging.Page(10, "b"))
    assert [o.name for o in rows.items] == ["c", "o"] and rows.next_key is None and rows.limit == 10


@pytest.mark.parametrize("key, after", [("name", 3), ("id", "3"), ("id", True)])
def test_a_cursor_of_another_lists_key_type_is_refused(org, key, after):
    with pytest.raises(RegistryError) as refused:
        paging.keyset(Organization.select(), getattr(Organization, key), paging.Page(10, after))
    assert refused.value.code == "INVALID" and refused.value.field == "cursor"


def test_a_sorted_list_pages_by_its_string_keys():
    items = ["a/", "b", "c/", "d"]
    first = paging.sorted_list(items, str, paging.Page(3))
    assert first.items == ["a/", "b", "c/"] and first.next_key == "c/"
    rest = paging.sorted_list(items, str, paging.Page(3, first.next_key))
    assert rest.items == ["d"] and rest.next_key is None
    with pytest.raises(RegistryError):
        paging.sorted_list(items, str, paging.Page(3, 1))
