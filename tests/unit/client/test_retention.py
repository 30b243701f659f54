"""`berth retention set` as a user types it: per-repository overrides `GLOB:field=value,...`
and counts that may be `off`, read into the policy the API takes, and refused with a message
naming what was wrong."""

from __future__ import annotations

import argparse

import pytest

from app.client import retention


@pytest.fixture
def parse():
    parser = argparse.ArgumentParser(prog="berth")
    retention.add_parsers(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    return lambda *argv: parser.parse_args(["retention", "set", "r", *argv])


def test_overrides_and_counts_as_typed(parse):
    args = parse(
        "--override",
        "ci/*:keep_last=3,expire_days=off,keep_patterns=v*|latest,delete_untagged=yes",
        "--override",
        "tmp/*:",
        "--keep-last",
        "off",
        "--expire-days",
        "30",
    )
    assert args.override == [
        {
            "repositories": "ci/*",
            "keep_last": 3,
            "expire_days": None,
            "keep_patterns": ["v*", "latest"],
            "delete_untagged": True,
        },
        {"repositories": "tmp/*"},
    ]
    assert args.keep_last is None and args.expire_days == 30
    untouched = parse()
    assert untouched.keep_last is ... and untouched.delete_untagged is ...  # not sent: the stored rule stays


@pytest.mark.parametrize(
    "argv",
    [
        ["--override", ":keep_last=3"],
        ["--override", "ci/*:colour=3"],
        ["--override", "ci/*:keep_last=many"],
        ["--override", "ci/*:delete_untagged=maybe"],
        ["--expire-days", "0"],
        ["--keep-last", "-1"],
        ["--delete-untagged", "--no-delete-untagged"],
    ],
)
def test_what_cannot_be_read_is_refused(parse, argv, capsys):
    with pytest.raises(SystemExit) as raised:
        parse(*argv)
    assert raised.value.code == 2 and "error:" in capsys.readouterr().err
