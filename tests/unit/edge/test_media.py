"""Reading JSON bodies on /api/v1: an object or INVALID naming the problem; unknown fields refused
by name; string fields checked; a blank query value kept as ""."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from app.edge.media import object_of, query, string_field
from app.spec.errors import RegistryError


def request(body: bytes | None = None, query_string: str = "") -> falcon.Request:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    env = falcon.testing.create_environ(path="/api/v1/x", body=body or b"", headers=headers, query_string=query_string)
    return falcon.Request(env)


def refusal(call) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call()
    assert caught.value.code == "INVALID"
    return caught.value


def test_a_json_object_is_returned():
    assert object_of(request(b'{"name": "acme"}'), example='{"name": "acme"}') == {"name": "acme"}


def test_malformed_json_names_the_example_to_send():
    error = refusal(lambda: object_of(request(b"{name"), example='{"name": "acme"}'))
    assert "is not valid JSON" in error.message and '{"name": "acme"}' in error.message


@pytest.mark.parametrize("body", [b"[1]", b'"acme"', b"null", b"3"])
def test_json_that_is_not_an_object_is_refused(body):
    refusal(lambda: object_of(request(body), example="{}"))


def test_an_unknown_field_is_refused_by_name():
    error = refusal(lambda: object_of(request(b'{"name": 1, "nmae": 2}'), example="{}", allowed={"name"}))
    assert error.field == "nmae"


def test_an_optional_body_may_be_absent_but_a_literal_null_is_not_an_object():
    assert object_of(request(), example="{}", optional=True) == {}
    refusal(lambda: object_of(request(b"null"), example="{}", optional=True))


@pytest.mark.parametrize("value", ["", 7, "x" * 11, ["a"]])
def test_a_string_field_must_be_a_short_non_empty_string(value):
    assert refusal(lambda: string_field({"name": value}, "name", max_length=10)).field == "name"


def test_a_missing_string_field_is_none_unless_required():
    assert string_field({}, "name") is None
    assert string_field({"name": "acme"}, "name", required=True) == "acme"
    assert refusal(lambda: string_field({}, "name", required=True)).message == "name is required"


def test_a_blank_query_value_is_kept_as_an_empty_string():
    assert query(request(query_string="since=&limit=5"), "since") == ""
    assert query(request(query_string="since=a&since=b"), "since") == "b"
    assert query(request(query_string="limit=5"), "limit") == "5"
    assert query(request(query_string="limit=5"), "since") is None
