"""The management gate over a real SQLite database and real access tokens: anonymous callers get
401, what a caller may not see answers 404 exactly like what does not exist, what it may see but
not do answers 403, a registry-scoped token reaches only its registry, and an authorized
preflight is let through (its body may follow)."""

from __future__ import annotations

import pytest

from app.api.gate import ManagementGate
from app.auth import roles, token_secrets
from app.auth.identity import Identity
from app.auth.keys import KeyRing
from app.auth.registry_tokens import RegistryTokens
from app.db.models import AccessToken, Organization, Registry
from app.edge import preflight
from tests.support.tiny_app import tiny_app


class Registries:
    permissions = {"GET": roles.BROWSE, "POST": roles.CREATE_REGISTRY}

    def on_get(self, req, resp, **params):
        resp.media = {
            "org": req.context.org.name,
            "registry": getattr(getattr(req.context, "registry", None), "name", None),
        }

    on_post = on_get


class OneRegistry(Registries):
    permissions = {"GET": roles.BROWSE, "DELETE": roles.DELETE_REGISTRY}
    on_delete = Registries.on_get


class Me:
    permissions = {"GET": roles.BROWSE}

    def on_get(self, req, resp):
        resp.media = {"me": req.context.subject.name}


class Document:
    def on_get(self, req, resp):
        resp.media = {"openapi": "3.1.0"}


class ById(Registries):
    """A route addressed by id: the resource says which organization it lies in."""

    permissions = {"GET": roles.BROWSE}

    def org_for(self, params):
        return Organization.get_or_none(Organization.id == int(params["id"]))


class HalfDeclared:
    """Declares GET only, but also answers PUT."""

    permissions = {"GET": roles.BROWSE}

    def on_get(self, req, resp, **params):
        resp.media = {"ran": req.method}

    on_put = on_get


def token(org, role: str, registry=None) -> str:
    secret = token_secrets.generate_token()
    AccessToken.create(org=org, registry=registry, name=role, role=role, token_hash=token_secrets.hash_token(secret))
    return f"Bearer {secret}"


@pytest.fixture
def world(database, tmp_path):
    org, other = Organization.create(name="o"), Organization.create(name="p")
    r1 = Registry.create(org=org, name="r1")
    Registry.create(org=org, name="r2")
    http = tiny_app(ManagementGate(Identity(RegistryTokens(KeyRing(tmp_path / "keys").load()))))
    for path, resource in [
        ("/api/v1/orgs/{org}/registries", Registries()),
        ("/api/v1/orgs/{org}/registries/{registry}", OneRegistry()),
        ("/api/v1/me", Me()),
        ("/api/v1/openapi.json", Document()),
        ("/api/v1/things/{id}", ById()),
        ("/api/v1/orgs/{org}/half", HalfDeclared()),
    ]:
        http.app.add_route(path, resource)
    callers = {
        "reader": token(org, "reader"),
        "developer": token(org, "developer"),
        "r1 only": token(org, "developer", registry=r1),
        "outsider": token(other, "owner"),
    }
    return http, callers, org


def call(world, method: str, path: str, caller: str | None = None, **kwargs):
    http, callers, _ = world
    headers = {"Authorization": callers[caller]} if caller else {}
    return http.simulate_request(method, path, headers=headers, **kwargs)


def test_an_anonymous_caller_is_asked_to_authenticate_and_a_public_route_is_open(world):
    response = call(world, "GET", "/api/v1/orgs/o/registries")
    assert (response.status_code, response.json["code"]) == (401, "UNAUTHORIZED")
    assert call(world, "GET", "/api/v1/openapi.json").json == {"openapi": "3.1.0"}


def test_a_member_reaches_the_organization_and_it_is_on_the_request(world):
    assert call(world, "GET", "/api/v1/orgs/o/registries", "reader").json == {"org": "o", "registry": None}
    assert call(world, "GET", "/api/v1/orgs/o/registries/r2", "reader").json == {"org": "o", "registry": "r2"}


def test_what_a_member_may_see_but_not_do_is_403(world):
    assert call(world, "POST", "/api/v1/orgs/o/registries", "reader").json["code"] == "DENIED"
    assert call(world, "DELETE", "/api/v1/orgs/o/registries/r1", "reader").status_code == 403
    assert call(world, "DELETE", "/api/v1/orgs/o/registries/r1", "developer").status_code == 200


def test_an_organization_the_caller_is_not_in_answers_as_one_that_does_not_exist(world):
    theirs = call(world, "GET", "/api/v1/orgs/o/registries", "outsider")
    missing = call(world, "GET", "/api/v1/orgs/nope/registries", "outsider")
    assert theirs.status_code == missing.status_code == 404
    assert call(world, "GET", "/api/v1/orgs/o/registries/ghost", "developer").status_code == 404


def test_a_registry_scoped_token_reaches_only_its_registry_and_nothing_org_wide(world):
    assert call(world, "GET", "/api/v1/orgs/o/registries/r1", "r1 only").status_code == 200
    assert call(world, "GET", "/api/v1/orgs/o/registries/r2", "r1 only").status_code == 404
    assert call(world, "GET", "/api/v1/orgs/o/registries", "r1 only").status_code == 403


def test_a_route_addressed_by_id_is_judged_in_the_organization_the_resource_names(world):
    _, _, org = world
    assert call(world, "GET", f"/api/v1/things/{org.id}", "reader").json["org"] == "o"
    assert call(world, "GET", f"/api/v1/things/{org.id}", "outsider").status_code == 404


def test_a_route_under_no_organization_needs_only_a_caller(world):
    assert call(world, "GET", "/api/v1/me", "outsider").json["me"].startswith("token:")
    assert call(world, "GET", "/api/v1/me").status_code == 401


def test_a_preflight_is_let_through_once_authorized_and_refused_otherwise(world):
    marker = preflight.Preflight()
    passed = call(world, "POST", "/api/v1/orgs/o/registries", "developer", extras={preflight.KEY: marker})
    assert (passed.status_code, marker.passed) == (204, True)
    marker = preflight.Preflight()
    refused = call(world, "POST", "/api/v1/orgs/o/registries", "reader", extras={preflight.KEY: marker})
    assert (refused.status_code, marker.passed) == (403, False)


def test_a_method_the_resource_answers_but_does_not_declare_is_refused(world):
    assert call(world, "PUT", "/api/v1/orgs/o/half").status_code in (401, 403, 404, 405)
