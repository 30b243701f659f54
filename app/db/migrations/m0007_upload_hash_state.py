"""Upload.hash_state: the running SHA-256 state at the upload's committed offset
(app/services/hashstate.py), so a chunk landing on another worker or replica continues the hash
instead of rehashing the upload's bytes. Existing rows keep null (their next chunk rehashes)."""

import peewee as pw


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("upload", "hash_state", pw.BlobField(null=True)),
    )
