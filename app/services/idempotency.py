"""The answers kept for `Idempotency-Key` replays: the first answer to a create, per caller and
key, for a day. What is kept and when it is replayed is the middleware's (app/api/idempotency.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import peewee as pw

from app.db.models import IdempotencyKey, utcnow

KEEP = dt.timedelta(days=1)


@dataclass(frozen=True)
class Answer:
    """A kept answer, and the request it answered."""

    method: str
    path: str
    fingerprint: str  # of the request body
    status: int
    headers: dict[str, str]
    body: str


def find(subject: str, key: str) -> Answer | None:
    """The answer kept for `subject`'s `key`, unless it is older than KEEP."""
    row = IdempotencyKey.get_or_none(
        (IdempotencyKey.subject == subject)
        & (IdempotencyKey.key == key)
        & (IdempotencyKey.created_at > utcnow() - KEEP)
    )
    if row is None:
        return None
    return Answer(row.method, row.path, row.fingerprint, row.status, json.loads(row.headers), row.body)


def keep(subject: str, key: str, answer: Answer) -> bool:
    """Keep `answer` for `subject`'s `key` (replacing one kept before), and forget answers older
    than KEEP. False when the database refused: the create happened, only its replay is lost."""
    try:
        IdempotencyKey.delete().where((IdempotencyKey.subject == subject) & (IdempotencyKey.key == key)).execute()
        IdempotencyKey.delete().where(IdempotencyKey.created_at < utcnow() - KEEP).execute()
        IdempotencyKey.insert(
            subject=subject,
            key=key,
            method=answer.method,
            path=answer.path,
            fingerprint=answer.fingerprint,
            status=answer.status,
            headers=json.dumps(answer.headers),
            body=answer.body,
        ).execute()
    except pw.PeeweeException:
        return False
    return True
