"""The request media handlers: a JSON or form body is read up to a byte limit, JSON up to a
nesting depth; past either the client gets a 4xx naming the limit; other media types get 415."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.edge.bodies import BoundedFormHandler, BoundedJSONHandler, request_handlers
from app.spec.errors import RegistryError
from tests.support.tiny_app import tiny_app


class Media:
    def on_post(self, req, resp, **params):
        resp.media = {"got": req.get_media()}


def client(max_bytes: int = 64, max_depth: int = 4):
    http = tiny_app(resource=Media())
    http.app.req_options.media_handlers = request_handlers(max_bytes, max_depth)
    return http


def post(http, body: bytes, content_type: str = "application/json", **headers):
    return http.simulate_post("/api/v1/x", body=body, headers={"Content-Type": content_type, **headers})


def test_a_json_body_within_the_limits_is_parsed():
    assert post(client(), b'{"name": [1, {"a": null}]}').json == {"got": {"name": [1, {"a": None}]}}


def test_a_form_body_within_the_limit_is_parsed():
    response = post(client(), b"grant_type=password&scope=x", "application/x-www-form-urlencoded")
    assert response.json == {"got": {"grant_type": "password", "scope": "x"}}


def test_a_body_declared_too_large_is_refused_with_413_naming_the_limit():
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        response = post(client(max_bytes=10), b'{"a": "0123456789"}', content_type)
        assert response.status_code == 413
        assert "10-byte limit" in response.json["detail"]


@pytest.mark.parametrize("handler", [BoundedJSONHandler(10, 4), BoundedFormHandler(10)])
def test_a_body_of_unknown_length_is_read_no_further_than_the_limit_and_refused(handler):
    stream = io.BytesIO(b"a=" + b"0" * 1000)
    with pytest.raises(RegistryError) as caught:
        handler.deserialize(stream, "application/json", None)
    assert (caught.value.status, stream.tell()) == (413, 11)


def test_json_nested_past_the_depth_limit_is_a_4xx_not_a_500():
    response = post(client(max_depth=4, max_bytes=1000), b"[[[[[[[[1]]]]]]]]")
    assert 400 <= response.status_code < 500


def test_a_media_type_nothing_takes_is_refused_with_415():
    assert post(client(), b"--x--", "multipart/form-data; boundary=x").status_code == 415


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=80))
def test_no_body_of_bytes_gets_a_500(body):
    assert post(client(), body).status_code in (200, 400, 413)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda x: st.lists(x, max_size=3), max_leaves=8))
def test_what_fits_the_limits_reads_back_as_sent(value):
    body = json.dumps(value).encode()
    assert post(client(max_bytes=10_000, max_depth=100), body).json == {"got": value}
