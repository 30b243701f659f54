"""Forget the stored answers of token and credential creations: before this version an
`Idempotency-Key` replay kept each whole answer, the new token's secret included, and such a row
outlives its day until the next keyed create sweeps it. Answers stored from now on carry no
secret (app/api/idempotency.py). A retry of one of these creations with an old key now creates
anew instead of replaying; registry creations' answers are kept."""

import peewee as pw


class IdempotencyKey(pw.Model):
    path = pw.CharField(max_length=1024)

    class Meta:
        table_name = "idempotency_key"


def up(migrator, db):
    with IdempotencyKey.bind_ctx(db):
        IdempotencyKey.delete().where(
            IdempotencyKey.path.endswith("/tokens") | IdempotencyKey.path.endswith("/credentials")
        ).execute()
