"""Idempotency-Key on management creates, over a real SQLite database: a retry with the same key
and body replays the first answer (no second create), the same key on another request is 422,
keys are per caller, and a secret in the answer is never stored: the replay has it withheld."""

from __future__ import annotations

import pytest

from app.api.idempotency import HEADER, WITHHELD_HEADER, Idempotency
from app.auth.subject import Subject
from app.db.models import IdempotencyKey
from tests.support.tiny_app import tiny_app


class Caller:
    """Stands in for the gate, which runs first: the caller is known."""

    def process_resource(self, req, resp, resource, params):
        name = req.get_header("X-Test-Caller")
        if name:
            req.context.subject = Subject(name=name)


class Create:
    idempotent = ("POST",)

    def __init__(self) -> None:
        self.created = 0

    def on_post(self, req, resp, **params):
        self.created += 1
        resp.status = 201
        resp.set_header("Location", f"/api/v1/things/{self.created}")
        resp.media = {"id": self.created, "body": req.get_media(default_when_empty=None)}

    def on_put(self, req, resp, **params):
        self.on_post(req, resp)


class IssueToken(Create):
    secret_fields = ("token", "docker_config")

    def __init__(self, leak: bool = False) -> None:
        super().__init__()
        self.leak = leak

    def on_post(self, req, resp, **params):
        self.created += 1
        secret = f"berth_secret{self.created}"
        req.context.secret = secret
        resp.status = 201
        resp.media = {"id": self.created, "token": secret, "docker_config": {"auth": secret}}
        if self.leak:
            resp.media["note"] = f"your token is {secret}"


@pytest.fixture
def service(database):
    return lambda resource: tiny_app(Caller(), Idempotency(), resource=resource)


def post(http, key: str | None, body: dict, caller: str = "alice", path: str = "/api/v1/things"):
    headers = {"X-Test-Caller": caller, **({HEADER: key} if key else {})}
    return http.simulate_post(path, json=body, headers=headers)


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(service):
    create = Create()
    http = service(create)
    first = post(http, "k1", {"name": "a"})
    again = post(http, "k1", {"name": "a"})
    assert create.created == 1
    assert (again.status_code, again.json, again.headers["Location"]) == (201, first.json, "/api/v1/things/1")
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers


def test_the_same_body_in_another_key_order_is_the_same_request(service):
    create = Create()
    http = service(create)
    post(http, "k1", {"a": 1, "b": 2})
    assert post(http, "k1", {"b": 2, "a": 1}).headers.get("Idempotent-Replayed") == "true"


def test_the_same_key_on_another_body_or_path_is_refused(service):
    http = service(Create())
    post(http, "k1", {"name": "a"})
    other_body = post(http, "k1", {"name": "b"})
    assert (other_body.status_code, other_body.json["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert post(http, "k1", {"name": "a"}, path="/api/v1/others").status_code == 422


def test_keys_are_per_caller_and_requests_without_a_key_are_not_deduplicated(service):
    create = Create()
    http = service(create)
    post(http, "k1", {"name": "a"}, caller="alice")
    post(http, "k1", {"name": "a"}, caller="bob")
    post(http, None, {"name": "a"})
    post(http, None, {"name": "a"})
    assert create.created == 4


@pytest.mark.parametrize("key", ["has space", "é", "x" * 256])
def test_a_malformed_key_is_invalid(service, key):
    response = post(service(Create()), key, {})
    assert (response.status_code, response.json["invalid_params"][0]["name"]) == (400, HEADER)


def test_a_method_the_resource_did_not_opt_in_is_not_deduplicated(service):
    create = Create()
    http = service(create)
    for _ in range(2):
        http.simulate_put("/api/v1/things", json={}, headers={"X-Test-Caller": "alice", HEADER: "k1"})
    assert create.created == 2


def test_a_failed_create_is_not_kept(service):
    class Fails(Create):
        def on_post(self, req, resp, **params):
            self.created += 1
            resp.status = 409
            resp.media = {"code": "CONFLICT"}

    fails = Fails()
    http = service(fails)
    post(http, "k1", {})
    post(http, "k1", {})
    assert fails.created == 2


def test_a_replay_withholds_the_secret_and_says_so(service):
    issue = IssueToken()
    http = service(issue)
    first = post(http, "k1", {"name": "ci"})
    again = post(http, "k1", {"name": "ci"})
    assert first.json["token"] == "berth_secret1" and issue.created == 1
    assert (again.json["token"], again.json["docker_config"], again.headers[WITHHELD_HEADER]) == (None, None, "true")
    assert "revoke this token" in again.json["secret_withheld"]
    assert "berth_secret1" not in again.text
    assert "berth_secret1" not in IdempotencyKey.get().body


def test_an_answer_with_the_secret_somewhere_unnamed_is_not_kept_at_all(service):
    issue = IssueToken(leak=True)
    http = service(issue)
    post(http, "k1", {})
    post(http, "k1", {})
    assert issue.created == 2
    assert IdempotencyKey.select().count() == 0
