"""The audit trail on a real SQLite database: outcomes from statuses, records that never fail
the action they describe, filters by actor, action family and time, and times a client writes."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.db.models import Organization
from app.services import audit, paging
from app.spec.errors import RegistryError


@pytest.mark.parametrize(
    "status, outcome",
    [(200, "success"), (307, "success"), (401, "denied"), (403, "denied"), (404, "failure"), (500, "failure")],
)
def test_the_outcome_of_a_status(status, outcome):
    assert audit.outcome_of(status) == outcome


def test_records_are_filtered_by_actor_action_family_registry_and_time(database):
    org = Organization.create(name="o")
    audit.record(
        org_id=org.id, actor="alice", action="registry.create", status=201, registry="r", detail={"b": 1, "a": 2}
    )
    audit.record(org_id=org.id, actor="bob", action="registry.delete", status=403, registry="s")
    audit.record(org_id=org.id, actor="alice", action="registryx", status=200)
    audit.record(org_id=org.id, actor="alice", action="token.create", status=201)

    def events(**filters):
        return audit.page_of_events(org.id, paging.Page(limit=100), **filters).items

    def actions(**filters):
        return [e.action for e in reversed(events(**filters))]  # newest first: read oldest first

    assert actions(action="registry") == ["registry.create", "registry.delete"]
    assert actions(actor="alice", action="registry.create") == ["registry.create"]
    assert actions(registry="s") == ["registry.delete"]
    assert [e.outcome for e in events(action="registry.delete")] == ["denied"]
    assert [e.detail for e in events(registry="r")] == ['{"a": 2, "b": 1}']
    future = dt.datetime.utcnow() + dt.timedelta(minutes=1)
    assert actions(since=future) == [] and len(actions(until=future)) == 4
    assert actions(actor="alice") and audit.page_of_events(org.id + 1, paging.Page(limit=10)).items == []


def test_events_come_newest_first_a_page_at_a_time(database):
    org = Organization.create(name="o")
    for n in range(5):
        audit.record(org_id=org.id, actor="a", action=f"a.{n}", status=200)
    first = audit.page_of_events(org.id, paging.Page(limit=2))
    second = audit.page_of_events(org.id, paging.Page(limit=2, after=first.next_key))
    last = audit.page_of_events(org.id, paging.Page(limit=2, after=second.next_key))
    assert [e.action for e in first.items + second.items + last.items] == ["a.4", "a.3", "a.2", "a.1", "a.0"]
    assert last.next_key is None


def test_a_record_that_cannot_be_written_is_logged_not_raised(database, caplog):
    audit.record(org_id=999, actor="x" * 300, action="a", status=200)  # no such organization: a foreign key error
    assert "could not write the audit record for a" in caplog.text


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-29T12:00:00Z", dt.datetime(2026, 11, 29, 12)),
        ("2026-11-29T13:00:00+01:00", dt.datetime(2026, 11, 29, 12)),
        ("2026-11-29", dt.datetime(2026, 11, 29)),
        (None, None),
    ],
)
def test_times_as_clients_write_them(value, expected):
    assert audit.parse_time(value, "since") == expected


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2026-11-29\n", "２０２６-11-29", "0001-01-01T00:00:00+01:00", "2026-13-01"]
)
def test_other_times_are_invalid_by_field(value):
    with pytest.raises(RegistryError) as raised:
        audit.parse_time(value, "until")
    assert (raised.value.code, raised.value.field) == ("INVALID", "until")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789T:.+-Z \n", max_size=30))
def test_any_time_is_a_naive_utc_datetime_or_invalid(value):
    try:
        parsed = audit.parse_time(value, "since")
    except RegistryError as error:
        assert error.status == 400
    else:
        assert parsed.tzinfo is None
