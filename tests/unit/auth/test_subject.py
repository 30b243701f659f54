"""A subject's role in an organization (none outside the registry its token is scoped to), and
the access token's last use, written at most once a minute."""

from __future__ import annotations

import datetime as dt

from app.auth import subject as subjects
from app.auth.subject import Subject
from app.db.models import AccessToken, Organization


def test_a_registry_scoped_subject_has_no_role_in_other_registries():
    s = Subject(name="t", roles={1: "developer"}, registry_id=7)
    assert s.role_in(1, 7) == "developer" and s.role_in(1) == "developer"
    assert s.role_in(1, 8) is None and s.role_in(2, 7) is None
    assert Subject(name="u", roles={1: "reader"}).role_in(1, 8) == "reader"


def test_an_access_token_becomes_a_subject_and_its_use_is_recorded_once_a_minute(database):
    token = AccessToken.create(org=Organization.create(name="o"), name="t", role="developer", token_hash="h" * 64)
    s = subjects.for_access_token(token)
    assert s.roles == {token.org_id: "developer"} and s.token_id == token.id and s.credential[0] == token.id
    first = AccessToken.get_by_id(token.id).last_used_at
    assert first is not None
    subjects.for_access_token(AccessToken.get_by_id(token.id))
    assert AccessToken.get_by_id(token.id).last_used_at == first
    AccessToken.update(last_used_at=first - dt.timedelta(minutes=2)).execute()
    subjects.mark_used(AccessToken.get_by_id(token.id))
    assert AccessToken.get_by_id(token.id).last_used_at > first - dt.timedelta(minutes=2)
