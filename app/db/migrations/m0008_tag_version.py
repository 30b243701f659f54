"""`tag_version`: one row per repository whose tags ever changed, its `version` raised by triggers
on `tag` (insert, update, delete, cascades included), so a cached tag list is checked with one
primary-key read instead of an aggregate over the repository's tags (app/services/listings.py)."""

import peewee as pw


class Repository(pw.Model):
    class Meta:
        table_name = "repository"


class TagVersion(pw.Model):
    repository = pw.ForeignKeyField(Repository, primary_key=True, on_delete="CASCADE")
    version = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "tag_version"


def _bump(row: str) -> str:
    """Raise the version of `row`'s repository (row: NEW or OLD). Only while the repository
    exists: when it is being deleted, its tags' cascade would otherwise insert a row for it
    (failing the foreign key) after its own row went."""
    return (
        f"INSERT INTO tag_version (repository_id, version) SELECT {row}.repository_id, 1 "
        f"WHERE EXISTS (SELECT 1 FROM repository WHERE id = {row}.repository_id) "
        "ON CONFLICT (repository_id) DO UPDATE SET version = tag_version.version + 1;"
    )


def up(migrator, db):
    with TagVersion.bind_ctx(db):
        db.create_tables([TagVersion], safe=True)
    db.execute_sql("INSERT INTO tag_version (repository_id, version) SELECT DISTINCT repository_id, 1 FROM tag")
    if isinstance(db, pw.PostgresqlDatabase):
        db.execute_sql(f"""
            CREATE OR REPLACE FUNCTION berth_bump_tag_version() RETURNS trigger AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN
                    {_bump("OLD")}
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    {_bump("NEW")}
                END IF;
                RETURN NULL;
            END $$ LANGUAGE plpgsql""")
        db.execute_sql(
            "CREATE TRIGGER tag_version_bump AFTER INSERT OR UPDATE OR DELETE ON tag "
            "FOR EACH ROW EXECUTE FUNCTION berth_bump_tag_version()"
        )
        return
    db.execute_sql(f"CREATE TRIGGER tag_version_insert AFTER INSERT ON tag BEGIN {_bump('NEW')} END")
    db.execute_sql(f"CREATE TRIGGER tag_version_update AFTER UPDATE ON tag BEGIN {_bump('OLD')} {_bump('NEW')} END")
    db.execute_sql(f"CREATE TRIGGER tag_version_delete AFTER DELETE ON tag BEGIN {_bump('OLD')} END")
