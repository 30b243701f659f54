"""Who counts as an owner (on a real SQLite database, and on PostgreSQL for the race between two
removals of the last two owners, which only its row locks can order)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from app.db.models import AccessToken, Member, Organization, utcnow
from app.db.setup import open_database
from app.services import owners
from app.spec.errors import RegistryError


def _token(org, n, **fields):
    return AccessToken.create(org=org, name=f"t{n}", role="owner", token_hash=f"{n:064d}", **fields)


def test_only_a_live_organization_wide_owner_token_counts(database):
    org = Organization.create(name="o")
    from app.db.models import Registry

    registry = Registry.create(org=org, name="r")
    assert owners.counts_as_owner(_token(org, 1))
    assert not owners.counts_as_owner(_token(org, 2, registry=registry))
    assert not owners.counts_as_owner(_token(org, 3, revoked_at=utcnow()))
    assert not owners.counts_as_owner(_token(org, 4, expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert not owners.counts_as_owner(AccessToken.create(org=org, name="a", role="admin", token_hash="a" * 64))


def test_an_expired_owner_token_does_not_keep_the_organization_owned(database):
    org = Organization.create(name="o")
    alice = Member.create(org=org, subject="alice", role="owner")
    _token(org, 1, expires_at=utcnow() - dt.timedelta(seconds=1))
    with owners.changing_owners(org), pytest.raises(RegistryError, match="last owner"):
        owners.keep_an_owner(org, member=alice)
    _token(org, 2)
    with owners.changing_owners(org):
        owners.keep_an_owner(org, member=alice)


def test_two_removals_of_the_last_two_owners_leave_one_on_postgres():
    from tests.support import postgres

    db = open_database(postgres.create_database())
    try:
        org = Organization.create(name="o")
        alice, bob = (Member.create(org=org, subject=s, role="owner") for s in ("alice", "bob"))
        # Both check before either deletes, unless the first holds the other off until it commits:
        # then the barrier breaks after 2 s and the first goes on alone.
        checked, outcomes = threading.Barrier(2, timeout=2), []

        def remove(member):
            try:
                with owners.changing_owners(org):
                    owners.keep_an_owner(org, member=member)
                    try:
                        checked.wait()
                    except threading.BrokenBarrierError:
                        pass
                    Member.delete().where(Member.id == member.id).execute()
                outcomes.append("removed")
            except RegistryError as error:
                outcomes.append(error.code)
            finally:
                db.close()

        threads = [threading.Thread(target=remove, args=(m,)) for m in (alice, bob)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["CONFLICT", "removed"]
        assert Member.select().count() == 1
    finally:
        db.close()
