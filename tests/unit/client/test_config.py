"""The CLI's saved login: where it lives, its mode, and what overrides it."""

from __future__ import annotations

import json
import stat

import pytest

from app.client import config


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("BERTH_URL", "BERTH_TOKEN", "BERTH_ORG", "BERTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize(
    "given, url",
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000/", "http://localhost:5000"),
        ("registry.example.com", "https://registry.example.com"),
        ("http://registry.example.com:8080/", "http://registry.example.com:8080"),
    ],
)
def test_urls_get_a_scheme(given, url):
    assert config.normalize_url(given) == url


def test_not_a_url():
    with pytest.raises(ValueError):
        config.normalize_url("ftp://x")


def test_path_honours_xdg_and_berth_config(monkeypatch, tmp_path):
    assert config.path() == tmp_path / "xdg" / "berth" / "credentials.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config.path() == tmp_path / "home" / ".config" / "berth" / "credentials.json"
    monkeypatch.setenv("BERTH_CONFIG", str(tmp_path / "c.json"))
    assert config.path() == tmp_path / "c.json"


def test_save_is_0600_in_a_0700_directory_and_replaces(tmp_path):
    p = config.save("http://a", "berth_one", "acme")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    p.chmod(0o644)
    config.save("http://a", "berth_two", None)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert json.loads(p.read_text()) == {"url": "http://a", "token": "berth_two"}
    assert [f.name for f in p.parent.iterdir()] == ["credentials.json"]  # no temporary file left


def test_resolve_order(monkeypatch):
    assert config.resolve().url is None
    config.save("http://127.0.0.1:5000", "berth_saved", "acme")
    login = config.resolve()
    assert (login.url, login.token, login.org) == ("http://127.0.0.1:5000", "berth_saved", "acme")
    assert config.resolve("other").org == "other"
    monkeypatch.setenv("BERTH_ORG", "envorg")
    assert config.resolve().org == "envorg" and config.resolve("flag").org == "flag"
    monkeypatch.delenv("BERTH_ORG")
    # Another URL: the saved token and org stay behind.
    monkeypatch.setenv("BERTH_URL", "https://elsewhere.example")
    login = config.resolve()
    assert (login.url, login.token, login.org) == ("https://elsewhere.example", None, "default")
    monkeypatch.setenv("BERTH_TOKEN", "berth_env")
    assert config.resolve().token == "berth_env"


def test_a_broken_file_is_a_clear_error():
    config.path().parent.mkdir(parents=True)
    config.path().write_text("{not json")
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.resolve()
