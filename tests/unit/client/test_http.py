"""The CLI's HTTP client against a stand-in server on loopback that answers what each test
scripts (real sockets, real `requests`): every failure becomes one clear ApiError message,
lists follow `next_cursor`, and an operation is followed to its end with its new log lines."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from app.client.http import ApiError, Client


class StandIn:
    """Answers GETs from `routes`: path -> callable(query) -> (status, content type, body)."""

    def __init__(self) -> None:
        self.routes: dict = {}
        self.seen: list[tuple[str, dict, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                stand_in.seen.append((url.path, query, dict(self.headers)))
                status, content_type, body = stand_in.routes[url.path](query)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = StandIn()
    yield s
    s.stop()


PROBLEM = "application/problem+json"


def test_requests_carry_the_token_and_say_who_sends_them(server):
    server.routes["/x"] = lambda q: (200, "application/json", {"ok": True})
    assert Client(server.url + "/", "berth_t").get("/x") == {"ok": True}
    headers = server.seen[0][2]
    assert headers["Authorization"] == "Bearer berth_t" and headers["User-Agent"].startswith("berth-cli/")


@pytest.mark.parametrize(
    "status, body, message",
    [
        (401, {"detail": "bad token"}, "not logged in or token rejected: run berth login"),
        (
            400,
            {"detail": "name is required", "invalid_params": [{"name": "name"}, {"name": "visibility"}]},
            "name is required (field: visibility)",
        ),
        (500, {"detail": "boom", "request_id": "r-1"}, "boom [request id r-1]"),
        (404, "<html>nope</html>", "answered 404 Not Found (is http"),
    ],
)
def test_a_failure_is_one_clear_message(server, status, body, message):
    server.routes["/x"] = lambda q: (
        status,
        PROBLEM if isinstance(body, dict) else "text/html",
        body if isinstance(body, dict) else body.encode(),
    )
    with pytest.raises(ApiError) as raised:
        Client(server.url, "t").get("/x")
    assert message in str(raised.value)


def test_an_answer_that_is_not_json_is_named(server):
    server.routes["/x"] = lambda q: (200, "text/html", b"<html>a proxy</html>")
    with pytest.raises(ApiError, match="not JSON .is .* a Berth server"):
        Client(server.url, "t").get("/x")


def test_nobody_listening_is_cannot_reach(server):
    url = server.url
    server.stop()
    with pytest.raises(ApiError, match="cannot reach .* is the server running"):
        Client(url, "t", timeout=2).get("/x")


def test_a_list_follows_its_cursor_and_stops_at_the_limit(server):
    pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}

    def page(q):
        items, cursor = pages[q.get("cursor")]
        return 200, "application/json", {"items": items, "next_cursor": cursor}

    server.routes["/list"] = page
    client = Client(server.url, "t")
    assert client.paged("/list", "items", params={"actor": "a", "registry": None}) == list("abcde")
    assert server.seen[0][1] == {"actor": "a", "limit": "1000"}
    server.seen.clear()
    assert client.paged("/list", "items", limit=3) == ["a", "b", "c"]
    assert [q.get("limit") for _, q, _ in server.seen] == ["3", "1"]


def test_an_operation_is_followed_to_its_end_showing_each_line_once(server):
    states = iter([{"state": "running", "log": ["one", "two"]}, {"state": "succeeded", "log": ["one", "two", "three"]}])
    server.routes["/op"] = lambda q: (200, "application/json", {**next(states), "links": {"self": "/op"}})
    lines = []
    start = {"id": "o", "state": "pending", "log": ["one"], "links": {"self": "/op"}}
    final = Client(server.url, "t").follow(start, timeout=10, progress=lines.append, interval=0)
    assert final["state"] == "succeeded" and lines == ["one", "two", "three"]


def test_an_operation_still_running_at_the_timeout_says_where_to_follow_it(server):
    server.routes["/op"] = lambda q: (
        200,
        "application/json",
        {"id": "o", "state": "running", "links": {"self": "/op"}},
    )
    with pytest.raises(ApiError, match=r"still running after 0s; follow it at http://127\.0\.0\.1:\d+/op"):
        Client(server.url, "t").follow({"id": "o", "state": "running", "links": {"self": "/op"}}, timeout=0, interval=0)
