"""Pieces of the CLI's commands that are not HTTP (the commands themselves run against a real
server in tests/integration/test_cli.py): relative times, token states, audit targets."""

from __future__ import annotations

import datetime as dt

from app.client.commands import _target, _time_arg, _token_state


def test_times_are_given_as_iso_or_as_that_long_ago():
    assert _time_arg("2024-05-01T00:00:00Z") == "2024-05-01T00:00:00Z"
    assert _time_arg("2h").endswith("Z") and _time_arg(None) is None
    ago = dt.datetime.strptime(_time_arg("1d"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - ago) - dt.timedelta(days=1)) < dt.timedelta(seconds=5)


def test_a_token_s_state():
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _token_state({"revoked_at": "2020-01-01T00:00:00Z", "expires_at": future}) == "revoked"
    assert _token_state({"expires_at": "2020-01-01T00:00:00Z"}) == "expired"
    assert _token_state({"expires_at": "2020-01-01T00:00:00"}) == "expired"  # naive: UTC
    assert _token_state({"expires_at": future}) == _token_state({}) == "active"
    assert _token_state({"expires_at": "garbage"}) == "active"


def test_an_audit_event_s_target():
    assert _target({"registry": "r", "repository": "app", "tag": "v1", "digest": "sha256:" + "a" * 64}) == "r/app:v1"
    assert (
        _target({"registry": "r", "repository": "app", "digest": "sha256:" + "a" * 64}) == "r/app@sha256:aaaaaaaaaaaa"
    )
    assert _target({}) == ""
