"""A preflight: the request run on its headers alone. A front door that lets it through ends it
(`allow` -> 204, the body may follow); a public route refuses a large body unread (413)."""

from __future__ import annotations

from app.edge import preflight
from app.edge.preflight import Preflight, PublicRoutesTakeNoBody
from tests.support.tiny_app import tiny_app

LARGE = {"Content-Length": str(300 * 1024 * 1024)}


class FrontDoor:
    """A resource that authorizes, then calls allow() as the router and the gate do."""

    def __init__(self, takes_body: bool = True) -> None:
        self.takes_body = takes_body
        self.handled = 0

    def on_post(self, req, resp, **params):
        preflight.allow(req, takes_body=self.takes_body)
        self.handled += 1
        resp.media = {"preflight": preflight.is_preflight(req)}


class Public:
    def on_post(self, req, resp, **params):
        resp.media = {"public": True}


def run(resource, headers=None, *middleware):
    marker = Preflight()
    result = tiny_app(*middleware, resource=resource).simulate_post(
        "/v2/acme/app/blobs/uploads/", headers=headers or LARGE, extras={preflight.KEY: marker}
    )
    return result, marker


def test_on_a_request_allow_does_nothing_and_the_resource_runs():
    door = FrontDoor()
    result = tiny_app(resource=door).simulate_post("/v2/x", body=b"layer")
    assert (result.status_code, result.json, door.handled) == (200, {"preflight": False}, 1)


def test_a_preflight_let_through_ends_at_the_front_door_with_204_and_is_marked_passed():
    door = FrontDoor()
    result, marker = run(door)
    assert (result.status_code, marker.passed, marker.body_limit, door.handled) == (204, True, None, 0)


def test_a_route_that_takes_no_body_refuses_a_large_one_unread():
    result, marker = run(FrontDoor(takes_body=False))
    assert result.status_code == 413
    assert result.json["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"
    assert not marker.passed


def test_a_chunked_body_of_unknown_length_on_such_a_route_is_let_through_with_a_small_limit():
    result, marker = run(FrontDoor(takes_body=False), {"Transfer-Encoding": "chunked"})
    assert (result.status_code, marker.passed, marker.body_limit) == (204, True, preflight.SMALL_BODY)


def test_passed_tells_a_passed_preflight_from_a_refused_one_and_from_a_request():
    assert run(FrontDoor())[1].passed
    assert not run(FrontDoor(takes_body=False))[1].passed


def test_public_routes_take_no_large_body_on_a_preflight():
    result, marker = run(Public(), LARGE, PublicRoutesTakeNoBody())
    assert result.status_code == 413 and not marker.passed


def test_public_routes_are_left_alone_outside_a_preflight_and_unknown_methods_to_falcon():
    http = tiny_app(PublicRoutesTakeNoBody(), resource=Public())
    assert http.simulate_post("/auth/token", body=b"grant_type=password").json == {"public": True}
    refused = http.simulate_get("/auth/token", headers=LARGE, extras={preflight.KEY: Preflight()})
    assert refused.status_code == 405
