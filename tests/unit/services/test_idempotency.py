"""Kept Idempotency-Key answers on a real SQLite database: found by caller and key, replaced by a
second keep, and forgotten after a day."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db.models import IdempotencyKey, utcnow
from app.db.setup import open_database
from app.services import idempotency

ANSWER = idempotency.Answer("POST", "/api/v1/orgs/o/tokens", "f" * 64, 201, {"Location": "/x"}, '{"id": 1}')


@pytest.fixture(autouse=True)
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield
    db.close()


def test_an_answer_is_found_by_its_caller_and_key_only():
    assert idempotency.keep("alice", "k1", ANSWER)
    assert idempotency.find("alice", "k1") == ANSWER
    assert idempotency.find("bob", "k1") is None and idempotency.find("alice", "k2") is None


def test_keeping_again_replaces_the_answer():
    idempotency.keep("alice", "k1", ANSWER)
    second = idempotency.Answer("POST", "/other", "0" * 64, 202, {}, "{}")
    idempotency.keep("alice", "k1", second)
    assert idempotency.find("alice", "k1") == second
    assert IdempotencyKey.select().count() == 1


def test_an_answer_older_than_a_day_is_not_found_and_is_forgotten_at_the_next_keep():
    idempotency.keep("alice", "old", ANSWER)
    IdempotencyKey.update(created_at=utcnow() - idempotency.KEEP - dt.timedelta(seconds=1)).execute()
    assert idempotency.find("alice", "old") is None
    idempotency.keep("bob", "new", ANSWER)
    assert [row.key for row in IdempotencyKey.select()] == ["new"]


def test_a_database_that_refuses_loses_only_the_replay():
    IdempotencyKey.drop_table()
    assert idempotency.keep("alice", "k1", ANSWER) is False
