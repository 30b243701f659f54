"""The console's files: read once from a directory, served only by their names (no path reaches
the filesystem), each with its type, an ETag browsers revalidate (304), and the console's CSP."""

from __future__ import annotations

import pytest

from app.console.assets import CONTENT_SECURITY_POLICY, ConsoleAssets, ConsoleRedirect, load
from tests.support.tiny_app import tiny_app


@pytest.fixture
def static(tmp_path):
    root = tmp_path / "static"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>Berth</title>")
    (root / "js" / "app.js").write_text("export const x = 1;")
    (root / "style.css").write_text("body {}")
    (root / "data.bin").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("outside the console")
    return root


@pytest.fixture
def http(static):
    client = tiny_app()
    assets = ConsoleAssets(load(static))
    client.app.add_route("/console/", assets)
    client.app.add_route("/console/{path:path}", assets)
    client.app.add_route("/console", ConsoleRedirect())
    return client


def test_load_reads_each_file_under_the_root_with_its_content_type(static):
    assets = load(static)
    assert {name: a.content_type for name, a in assets.items()} == {
        "data.bin": "application/octet-stream",
        "index.html": "text/html; charset=utf-8",
        "js/app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
    }
    assert assets["js/app.js"].body == b"export const x = 1;"


def test_the_page_is_served_at_the_root_with_the_consoles_policy(http):
    response = http.simulate_get("/console/")
    assert response.status_code == 200 and response.text.startswith("<!doctype html>")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert (response.headers["Cache-Control"], response.headers["X-Content-Type-Options"]) == ("no-cache", "nosniff")


def test_a_module_is_served_by_its_path(http):
    response = http.simulate_get("/console/js/app.js")
    assert (response.text, response.headers["Content-Type"]) == (
        "export const x = 1;",
        "text/javascript; charset=utf-8",
    )


@pytest.mark.parametrize("path", ["/console/nope.js", "/console/../secret.txt", "/console/js/../../secret.txt"])
def test_a_name_that_is_not_a_loaded_file_is_404_and_reaches_no_file(http, path):
    response = http.simulate_get(path)
    assert response.status_code == 404
    assert "outside the console" not in response.text


def test_a_browser_holding_the_current_etag_gets_304_without_a_body(http):
    etag = http.simulate_get("/console/style.css").headers["ETag"]
    again = http.simulate_get("/console/style.css", headers={"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")
    stale = http.simulate_get("/console/style.css", headers={"If-None-Match": '"0000"'})
    assert (stale.status_code, stale.text) == (200, "body {}")


def test_head_answers_like_get(http):
    response = http.simulate_head("/console/js/app.js")
    assert response.status_code == 200 and response.headers["ETag"]


def test_the_console_without_a_slash_redirects_to_it(http):
    response = http.simulate_get("/console")
    assert (response.status_code, response.headers["Location"]) == (301, "/console/")


def test_the_shipped_console_has_its_page():
    assert "index.html" in load()
