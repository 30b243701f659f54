"""Errors in each plane's own format: the OCI envelope on /v2 (and /auth), problem JSON on /api
and /console; Falcon's own errors and unexpected exceptions too, never a traceback or HTML."""

from __future__ import annotations

import errno

import falcon
import pytest

from app.edge.error_responses import API_CHALLENGE, TOKEN_ENDPOINT_CHALLENGE, problem_type
from app.spec.errors import RegistryError
from tests.support.tiny_app import tiny_app


class Raises:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def on_get(self, req, resp, **params):
        raise self.error


def get(error: Exception, path: str):
    return tiny_app(resource=Raises(error)).simulate_get(path)


def test_the_data_plane_gets_the_oci_envelope():
    response = get(RegistryError("MANIFEST_UNKNOWN", "no tag v1"), "/v2/acme/app/manifests/v1")
    assert response.status_code == 404
    assert response.json["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.headers["Content-Type"] == "application/json"


def test_the_management_plane_gets_problem_json_with_the_invalid_field():
    response = get(RegistryError("INVALID", "name is required", field="name"), "/api/v1/orgs")
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json
    assert (body["type"], body["status"], body["code"], body["detail"]) == (
        "https://berth.dev/problems/invalid",
        400,
        "INVALID",
        "name is required",
    )
    assert body["invalid_params"] == [{"name": "name", "reason": "name is required"}]


def test_the_problem_type_is_one_stable_uri_per_code():
    assert problem_type("IDEMPOTENCY_KEY_REUSED") == "https://berth.dev/problems/idempotency-key-reused"


@pytest.mark.parametrize(
    ("path", "challenge"),
    [("/api/v1/orgs", API_CHALLENGE), ("/auth/token", TOKEN_ENDPOINT_CHALLENGE), ("/v2/", "Bearer realm=")],
)
def test_a_401_carries_the_challenge_its_plane_expects(path, challenge):
    response = get(RegistryError("UNAUTHORIZED"), path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(challenge)


def test_an_errors_own_headers_are_sent_and_its_own_challenge_kept():
    error = RegistryError("UNAUTHORIZED", headers={"WWW-Authenticate": 'Bearer error="x"', "Retry-After": "3"})
    response = get(error, "/v2/")
    assert (response.headers["WWW-Authenticate"], response.headers["Retry-After"]) == ('Bearer error="x"', "3")


def test_falcons_own_errors_are_rendered_with_a_matching_code():
    response = get(falcon.HTTPUnsupportedMediaType(description="send JSON"), "/api/v1/orgs")
    assert (response.status_code, response.json["code"], response.json["detail"]) == (415, "UNSUPPORTED", "send JSON")
    assert tiny_app().simulate_request("PATCH", "/v2/").json["errors"][0]["code"] == "UNSUPPORTED"


def test_an_unexpected_exception_is_a_500_in_the_planes_format_without_its_message():
    response = get(RuntimeError("secret detail"), "/api/v1/orgs")
    assert (response.status_code, response.json["code"]) == (500, "UNKNOWN")
    assert "secret detail" not in response.text


def test_a_full_disk_is_a_507_the_client_can_act_on():
    response = get(OSError(errno.ENOSPC, "No space left on device"), "/v2/acme/app/blobs/uploads/")
    assert (response.status_code, response.json["errors"][0]["code"]) == (507, "STORAGE_FULL")
