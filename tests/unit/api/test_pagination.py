"""The HTTP side of pagination: `?limit=&cursor=` read into a page, and a page's next key
written back as `next_cursor` and a `Link` header that keeps the other parameters."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

from app.api import pagination
from app.services import paging
from app.spec.errors import RegistryError


def test_a_request_without_parameters_asks_for_the_first_default_page():
    assert pagination.page_of(falcon.testing.create_req(), str) == paging.Page(pagination.DEFAULT_LIMIT, None)


def test_the_cursor_of_a_page_reads_back_as_the_next_pages_key():
    rows = paging.Rows(["a", "b"], next_key="b", limit=2)
    body = pagination.body("members", rows.items, rows)
    assert body == {"members": ["a", "b"], "next_cursor": pagination.encode("b")}
    req = falcon.testing.create_req(query_string=f"limit=2&cursor={body['next_cursor']}")
    assert pagination.page_of(req, str) == paging.Page(2, "b")
    with pytest.raises(RegistryError):
        pagination.page_of(req, int)


def test_the_last_page_has_no_cursor_and_no_link():
    rows = paging.Rows(["z"], next_key=None, limit=2)
    resp = falcon.Response()
    pagination.link(falcon.testing.create_req(), resp, rows)
    assert pagination.body("tags", rows.items, rows)["next_cursor"] is None and resp.get_header("Link") is None


def test_the_link_to_the_next_page_keeps_the_filters():
    req = falcon.testing.create_req(path="/api/v1/orgs/o/audit", query_string="actor=alice&limit=1&cursor=x")
    resp = falcon.Response()
    pagination.link(req, resp, paging.Rows([7], next_key=7, limit=1))
    assert (
        resp.get_header("Link")
        == f'</api/v1/orgs/o/audit?actor=alice&limit=1&cursor={pagination.encode(7)}>; rel="next"'
    )
