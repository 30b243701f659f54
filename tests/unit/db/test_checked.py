"""Rows kept between reads and checked instead of read again (app/db/checked.py), on the real
PostgreSQL at 127.0.0.1:5432: within `reads()` a second lookup of the same registry or token costs
no message; a check of every kept row used goes first in the message of the next statement (or
alone when the block ends); a row changed or deleted by another connection fails that statement
before it runs (RowChanged) and is read afresh next time; nothing is kept outside `reads()`, on
SQLite, or for a name that is not there. Messages are counted by the `messages` fixture."""

from __future__ import annotations

import datetime as dt

import peewee as pw
import pytest

from app.auth.subject import LAST_USED_RESOLUTION, for_access_token
from app.auth.token_secrets import find_token, hash_token
from app.db import checked
from app.db.models import AccessToken, Organization, Registry, utcnow
from app.db.setup import open_database, transaction
from app.services.registries import find_registry
from app.spec.errors import RegistryError
from tests.support import postgres

SECRET = "berth_checked-test-secret"


def _registry(name: str = "kept", visibility: str = "private") -> Registry:
    org = Organization.get_or_none(Organization.name == "o") or Organization.create(name="o")
    return Registry.create(org=org, name=name, uid=f"uid-{name}", visibility=visibility)


def _token(org_id: int) -> AccessToken:
    return AccessToken.create(org=org_id, name="t", token_hash=hash_token(SECRET), role="owner", last_used_at=utcnow())


def _keep(name: str = "kept") -> None:
    """Read `name` once within reads(): it is kept from then on."""
    with checked.reads():
        assert find_registry(name) is not None


def _sent(messages: list[str]) -> list[str]:
    return [m for m in messages if not m.startswith(("PREPARE", "SET "))]


def test_outside_reads_every_lookup_is_a_message(pg, messages):
    _registry()
    messages.clear()
    for _ in range(2):
        assert find_registry("kept").name == "kept"
    assert len(_sent(messages)) == 2


def test_a_kept_row_costs_no_message_and_is_checked_with_the_next_statement(pg, messages):
    db, _ = pg
    _registry()
    _keep()
    messages.clear()
    with checked.reads():
        registry = find_registry("kept")
        assert registry.name == "kept" and registry.visibility == "private"
        assert messages == []  # nothing sent for the lookup
        assert db.execute_sql("SELECT count(*) FROM organization").fetchone()[0] == 1
    [message] = _sent(messages)
    check, statement = message.split("; ")
    assert check.startswith("EXECUTE berth_kept_registry(") and statement == "SELECT count(*) FROM organization"


def test_the_token_and_the_registry_are_checked_in_one_statement(pg, messages):
    db, _ = pg
    registry = _registry()
    _token(registry.org_id)
    with checked.reads():
        find_token(SECRET), find_registry("kept")
    messages.clear()
    with checked.reads():
        assert find_token(SECRET).token_hash == hash_token(SECRET)
        assert find_registry("kept").id == registry.id
        db.execute_sql("SELECT 1")
    [message] = _sent(messages)
    assert message.startswith("EXECUTE berth_kept_access_token_registry(") and message.endswith("; SELECT 1")


@pytest.mark.parametrize("change", ["UPDATE registry SET visibility = 'public'", "DELETE FROM registry"])
def test_a_row_changed_elsewhere_fails_the_next_statement_before_it_runs(pg, messages, change):
    _, url = pg
    _registry()
    _keep()
    postgres.sql(url, change)  # another connection: another replica, the management API
    with pytest.raises(checked.RowChanged, match="a kept row changed"):
        with checked.reads():
            assert find_registry("kept").visibility == "private"  # as kept...
            Organization.create(name="written")  # ...so this must not run
    assert not Organization.select().where(Organization.name == "written").exists()
    messages.clear()
    with checked.reads():  # forgotten: read afresh
        found = find_registry("kept")
    assert _sent(messages) and (found is None if change.startswith("DELETE") else found.visibility == "public")


def test_a_check_that_fails_inside_a_transaction_undoes_it_and_the_connection_goes_on(pg):
    db, url = pg
    _registry()
    _keep()
    postgres.sql(url, "UPDATE registry SET visibility = 'public'")
    with pytest.raises(checked.RowChanged):
        with checked.reads():
            find_registry("kept")
            with transaction():
                Organization.create(name="first")
                Organization.create(name="second")
    assert Organization.select().count() == 1
    assert db.execute_sql("SELECT 1").fetchone() == (1,)


def test_a_check_that_passes_goes_with_a_transactions_first_statement_which_commits(pg, messages):
    _registry()
    _keep()
    messages.clear()
    with checked.reads():
        find_registry("kept")
        with transaction():
            Organization.create(name="first")
            Organization.create(name="second")
    assert Organization.select().count() == 3
    first = _sent(messages)[0]
    assert first.startswith("EXECUTE berth_kept_registry(") and "; BEGIN; " in first


def test_checks_left_when_the_block_ends_are_sent_then(pg, messages):
    db, url = pg
    _registry()
    _keep()
    messages.clear()
    with checked.reads():
        find_registry("kept")  # and nothing else: an answer from kept rows alone
    [message] = _sent(messages)
    assert message.startswith("EXECUTE berth_kept_registry(") and message.endswith("; SELECT 1")
    postgres.sql(url, "UPDATE registry SET visibility = 'public'")
    with pytest.raises(checked.RowChanged):
        with checked.reads():
            find_registry("kept")


def test_a_refusal_from_a_kept_row_is_checked_before_it_is_given(pg, messages):
    _, url = pg
    _registry()
    _keep()

    def refuse():
        with checked.reads():
            if find_registry("kept").visibility == "private":
                raise RegistryError("UNAUTHORIZED", "authentication required")

    messages.clear()
    with pytest.raises(RegistryError):  # the row is as kept: the refusal stands, checked
        refuse()
    assert [m.split("(")[0] for m in _sent(messages)] == ["EXECUTE berth_kept_registry"]
    postgres.sql(url, "UPDATE registry SET visibility = 'public'")
    with pytest.raises(checked.RowChanged):  # it is not: the refusal is not given
        refuse()
    refuse()  # read afresh: public, no refusal


def test_a_name_that_is_not_there_is_not_kept(pg, messages):
    messages.clear()
    for _ in range(3):
        with checked.reads():
            assert find_registry("absent") is None
    assert len(_sent(messages)) == 3


def test_a_token_this_process_marks_used_is_read_afresh_not_failed(pg, messages):
    registry = _registry()
    token = _token(registry.org_id)
    AccessToken.update(last_used_at=utcnow() - LAST_USED_RESOLUTION - dt.timedelta(seconds=1)).where(
        AccessToken.id == token.id
    ).execute()
    with checked.reads():
        find_token(SECRET)  # kept, with last_used_at a minute old
    with checked.reads():
        for_access_token(find_token(SECRET))  # records last_used_at: the row changes
    with checked.reads():  # no RowChanged: the process forgot the row it changed itself
        assert find_token(SECRET).last_used_at > utcnow() - LAST_USED_RESOLUTION


def test_without_server_side_prepared_statements_the_check_is_plain_sql(pg, messages):
    _, url = pg
    db = open_database(url + "?server_prepare=off")
    try:
        _registry()
        _keep()
        messages.clear()
        with checked.reads():
            find_registry("kept")
            db.execute_sql("SELECT 1")
        [message] = _sent(messages)
        assert message.startswith('SELECT int4(CASE WHEN EXISTS (SELECT 1 FROM "registry"')
        postgres.sql(url, "DELETE FROM registry")
        with pytest.raises(checked.RowChanged):
            with checked.reads():
                find_registry("kept")
                db.execute_sql("SELECT 1")
    finally:
        db.close()


def test_sqlite_keeps_nothing(database, messages):
    _registry()
    messages.clear()
    for _ in range(2):
        with checked.reads():
            find_registry("kept")
            find_registry("kept")
    assert len(messages) == 4 and not any("xmin" in m or "int4" in m for m in messages)


def test_an_error_of_the_database_itself_is_not_taken_for_a_changed_row(pg):
    _registry()
    _keep()
    with pytest.raises(pw.DataError) as raised:
        with checked.reads():
            find_registry("kept")
            Organization.raw("SELECT int4('not a number')").execute()
    assert not isinstance(raised.value, checked.RowChanged)


def test_a_check_whose_connection_the_server_dropped_is_sent_again_on_a_new_one(pg, messages):
    db, url = pg
    _registry()
    _keep()
    assert postgres.terminate_connections(url) >= 1  # this thread's pooled connection is gone
    messages.clear()
    with checked.reads():
        assert find_registry("kept").name == "kept"  # kept: nothing sent yet
        assert db.execute_sql("SELECT count(*) FROM registry").fetchone()[0] == 1
    # The first message on the dropped connection (the check's PREPARE) failed; on a new one
    # it is prepared again and the check goes with the statement, which is answered.
    prepares = [m for m in messages if m.startswith("PREPARE berth_kept_registry")]
    assert len(prepares) == 2
    assert [m for m in _sent(messages)] == ["EXECUTE berth_kept_registry(%s, %s); SELECT count(*) FROM registry"]
