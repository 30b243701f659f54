"""How every CLI command fails: one `error: ...` line on stderr and exit 1, never a traceback
(unless BERTH_DEBUG asks for it); a closed pipe is not an error; and a command without a login
says how to log in."""

from __future__ import annotations

import argparse

import pytest

from app.client import context
from app.client.config import Login
from app.client.http import ApiError


@pytest.fixture(autouse=True)
def no_login(monkeypatch, tmp_path):
    for name in ("BERTH_URL", "BERTH_TOKEN", "BERTH_ORG", "BERTH_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BERTH_CONFIG", str(tmp_path / "none.json"))


def _command(error: BaseException):
    @context.guarded
    def command(args):
        raise error

    return command


def test_an_expected_failure_is_one_line_and_exit_1(capsys):
    assert _command(ApiError("registry 'x' not found"))(argparse.Namespace()) == 1
    assert capsys.readouterr().err == "error: registry 'x' not found\n"


def test_a_bug_is_still_one_line_unless_debugging(capsys, monkeypatch):
    assert _command(KeyError("k"))(argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError") and "BERTH_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("BERTH_DEBUG", "1")
    with pytest.raises(KeyError):
        _command(KeyError("k"))(argparse.Namespace())


def test_interrupted_is_130():
    assert _command(KeyboardInterrupt())(argparse.Namespace()) == 130


def test_a_command_without_a_login_says_how_to_log_in(capsys):
    @context.http_command
    def command(ctx):
        pytest.fail("must not run without a login")

    assert command(argparse.Namespace(org=None)) == 1
    assert "not logged in: run berth login" in capsys.readouterr().err


def test_paths_quote_what_the_user_typed():
    ctx = context.Context(argparse.Namespace(json=True), Login(url="http://h", token="t", org="a b", source="test"))
    assert ctx.json and ctx.registry_path("r/../x", "/tags") == "/api/v1/orgs/a%20b/registries/r%2F..%2Fx/tags"
