"""`berth db migrate` and `berth db status` on a fresh data directory's SQLite database: migrate
applies every migration once and says so, again is nothing to do, and status lists each one."""

from __future__ import annotations

import argparse

import pytest

from app.db import commands, migrations


@pytest.fixture
def args(tmp_path, monkeypatch):
    monkeypatch.delenv("BERTH_DATABASE_URL", raising=False)
    monkeypatch.delenv("BERTH_DATA_DIR", raising=False)
    return argparse.Namespace(data_dir=tmp_path / "data", target=None)


def test_migrate_applies_each_migration_once(args, capsys):
    versions = [m.version for m in migrations.available()]
    assert commands.migrate_command(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[:-1]] == [f"{v:04d}" for v in versions]
    assert out[-1] == f"schema at version {max(versions)}"
    assert commands.migrate_command(args) == 0
    assert capsys.readouterr().out == f"schema at version {max(versions)} (nothing to do)\n"


def test_a_target_stops_there_and_status_shows_what_is_pending(args, capsys):
    args.target = 2
    commands.migrate_command(args)
    capsys.readouterr()
    assert commands.status_command(args) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == [f"{m.version:04d}" for m in migrations.available()]
    assert all(r[2].startswith("applied ") and r[2].endswith("Z") for r in rows[:2])
    assert all(r[2] == "pending" for r in rows[2:])


def test_the_commands_are_registered_under_db():
    parser = argparse.ArgumentParser()
    commands.add_parser(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    parsed = parser.parse_args(["db", "migrate", "--target", "3"])
    assert parsed.func is commands.migrate_command and parsed.target == 3
    assert parser.parse_args(["db", "status"]).func is commands.status_command
