"""Hostile names through the real server: a newline (leading, trailing, embedded), other control
characters, NUL, other scripts' digits and letters, and over-long strings in every place a
request carries a name, tag, digest, subject, domain or number. Each gets a 4xx in its
protocol's format (never a 5xx), and nothing is stored.

The unit tests (tests/unit/test_validators.py) hunt the validators themselves; this module
proves the server routes every such value to one of them, including through percent-decoding.
One server for the module, and few examples per property, so it runs in well under a minute.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.management import Api
from tests.support.registry_client import OCI_MANIFEST, RegistryClient, sha256

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))

CONTROL = st.one_of(st.characters(max_codepoint=0x1F), st.sampled_from("\x7f\x85\u2028"))
NON_ASCII = st.one_of(st.sampled_from("²①١５éΩＡ"), st.characters(min_codepoint=0x80, exclude_categories=("Cs",)))
HOSTILE = st.one_of(st.just("\n"), CONTROL, NON_ASCII)


def spoiled(valid: str, *, longest: int) -> st.SearchStrategy[str]:
    """`valid` with hostile characters at its start, end or inside; or far longer than `longest`."""

    @st.composite
    def with_hostile(draw) -> str:
        bad = "".join(draw(st.lists(HOSTILE, min_size=1, max_size=3)))
        at = draw(st.sampled_from([0, len(valid), draw(st.integers(0, len(valid)))]))
        return valid[:at] + bad + valid[at:]

    return st.one_of(with_hostile(), st.just(valid + valid[-1] * (longest + 1)))


def send(
    server,
    method: str,
    path: str,
    *,
    query: dict | None = None,
    body: bytes = b"",
    headers: dict | None = None,
    bearer: bool = False,
) -> tuple[int, dict, bytes]:
    """Exactly this request: the path and query percent-encoded from the raw strings, no client
    normalising them, and the server's answer (a 5xx fails the test here)."""
    target = quote(path, safe="/")
    if query:
        target += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    auth = (
        f"Bearer {server.token}" if bearer else "Basic " + base64.b64encode(f"admin:{server.token}".encode()).decode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {"Authorization": auth, "Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        r = conn.getresponse()
        status, got, data = r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()
    assert status < 500, (method, target, status, data[:500])
    return status, got, data


def refused_on_v2(server, method: str, path: str, code: str | None = None, **kw) -> None:
    status, headers, data = send(server, method, path, **kw)
    assert 400 <= status < 500, (method, path, status, data[:300])
    if method != "HEAD":
        got = json.loads(data)["errors"][0]["code"]  # the OCI error envelope
        assert code in (None, got), (method, path, got, data[:300])


def refused_on_api(server, method: str, path: str, **kw) -> None:
    status, headers, data = send(server, method, path, bearer=True, **kw)
    assert 400 <= status < 500, (method, path, status, data[:300])
    assert json.loads(data)["status"] == status, data  # problem JSON


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support.server import Server

    s = Server(tmp_path_factory.mktemp("names") / "data", token="berth_name_validation_token").start()
    client = RegistryClient(s.url, s.session())
    s.digest, s.manifest_bytes, _ = client.push_image("default/app", "v1")
    s.api = Api(s)
    yield s
    s.stop()


def stored(srv) -> dict:
    """Everything a refused request could have left behind, as the API and the data plane show it."""
    client = RegistryClient(srv.url, srv.session())
    names = lambda r, key, field: sorted(x[field] for x in r.json()[key])  # noqa: E731
    blobs = srv.data_dir / "storage" / "blobs"
    return {
        "catalog": client.request("GET", "/v2/_catalog").json(),
        "tags": client.request("GET", "/v2/default/app/tags/list").json(),
        "registries": names(srv.api("GET", "/registries?limit=1000"), "registries", "name"),
        "tokens": names(srv.api("GET", "/tokens?limit=1000"), "tokens", "id"),
        "members": names(srv.api("GET", "/members?limit=1000"), "members", "subject"),
        "blobs": sorted(str(p) for p in blobs.rglob("*") if p.is_file()),
        "registry": srv.api("GET", "/registries/default").json()["custom_domain"],
    }


@contextlib.contextmanager
def nothing_stored(srv):
    before = stored(srv)
    yield
    assert stored(srv) == before


# -- the data plane ----------------------------------------------------------------------------


@SETTINGS
@given(tag=spoiled("v2", longest=128))
@example(tag="v1\n")
def test_a_manifest_put_under_a_hostile_tag_is_refused_and_stores_no_tag(srv, tag):
    with nothing_stored(srv):
        refused_on_v2(
            srv,
            "PUT",
            f"/v2/default/app/manifests/{tag}",
            body=srv.manifest_bytes,
            headers={"Content-Type": OCI_MANIFEST},
        )


ROUTES = [
    ("GET", "/v2/default/{name}/tags/list"),
    ("GET", "/v2/default/{name}/manifests/v1"),
    ("HEAD", "/v2/default/{name}/manifests/v1"),
    ("PUT", "/v2/default/{name}/manifests/v1"),
    ("DELETE", "/v2/default/{name}/manifests/v1"),
    ("GET", "/v2/default/{name}/blobs/{digest}"),
    ("HEAD", "/v2/default/{name}/blobs/{digest}"),
    ("DELETE", "/v2/default/{name}/blobs/{digest}"),
    ("POST", "/v2/default/{name}/blobs/uploads/"),
    ("GET", "/v2/default/{name}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ("PATCH", "/v2/default/{name}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ("PUT", "/v2/default/{name}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ("DELETE", "/v2/default/{name}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ("GET", "/v2/default/{name}/referrers/{digest}"),
]


@SETTINGS
@given(name=spoiled("app/sub", longest=255))
@example(name="app\n")
def test_a_hostile_repository_name_is_refused_on_every_route(srv, name):
    with nothing_stored(srv):
        for method, route in ROUTES:
            body = srv.manifest_bytes if route.endswith("manifests/v1") and method == "PUT" else b"x"
            refused_on_v2(
                srv,
                method,
                route.format(name=name, digest=srv.digest),
                "NAME_INVALID",
                body=body,
                headers={"Content-Type": OCI_MANIFEST if b"{" in body else "application/octet-stream"},
            )


@SETTINGS
@given(digest=spoiled(sha256(b"x"), longest=71))
@example(digest=sha256(b"x") + "\n")
def test_a_hostile_digest_is_refused_in_blob_manifest_and_upload_routes(srv, digest):
    with nothing_stored(srv):
        for method in ("GET", "HEAD", "DELETE"):
            refused_on_v2(srv, method, f"/v2/default/app/blobs/{digest}")
            refused_on_v2(srv, method, f"/v2/default/app/manifests/{digest}")
        refused_on_v2(srv, "GET", f"/v2/default/app/referrers/{digest}")
        refused_on_v2(srv, "POST", "/v2/default/app/blobs/uploads/", query={"digest": digest}, body=b"x")
        refused_on_v2(srv, "POST", "/v2/default/other/blobs/uploads/", query={"mount": digest, "from": "default/app"})
        status, headers, _ = send(srv, "POST", "/v2/default/app/blobs/uploads/")
        assert status == 202
        refused_on_v2(srv, "PUT", headers["Location"], query={"digest": digest}, body=b"x")
        send(srv, "DELETE", headers["Location"])


NUMBERS = st.one_of(
    st.text(st.sampled_from("0123456789²①١٣５"), min_size=1, max_size=6), st.just("9" * 5000), spoiled("10", longest=12)
)


@SETTINGS
@given(n=NUMBERS)
@example(n="²")
@example(n="①")
def test_a_page_size_is_ascii_digits_or_refused_as_pagination_number_invalid(srv, n):
    for path in ("/v2/_catalog", "/v2/default/app/tags/list"):
        status, _, data = send(srv, "GET", path, query={"n": n})
        if n.isascii() and n.isdigit() and len(n) <= 9:
            assert status == 200, data
        else:
            assert status == 400 and json.loads(data)["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID", data


@SETTINGS
@given(last=spoiled("v1", longest=5000))
@example(last="v1\n")
@example(last="\x00v1")
def test_a_hostile_last_is_a_page_after_it_never_an_error(srv, last):
    for path in ("/v2/_catalog", "/v2/default/app/tags/list"):
        status, _, data = send(srv, "GET", path, query={"n": "10", "last": last})
        # `last` is a position in lexical order, not a name to validate; but no NUL reaches a query
        assert status == (400 if "\x00" in last else 200), data


@pytest.mark.parametrize(
    "method,path,query",
    [
        ("GET", "/v2/de\x00fault/app/tags/list", None),
        ("GET", "/v2/default/app/tags/list", {"last": "\x00"}),
        ("GET", "/api/v1/orgs/default/registries/de\x00fault", None),
        ("GET", "/api/v1/orgs/de\x00fault/registries", None),
        ("GET", "/api/v1/orgs/default/audit", {"actor": "a\x00"}),
        ("GET", "/api/v1/operations/\x00", None),
    ],
)
def test_a_nul_in_a_path_or_query_is_refused_before_any_database_query(srv, method, path, query):
    """PostgreSQL refuses a NUL in any text: the edge refuses it first (run with BERTH_TEST_DATABASE=postgres)."""
    status, _, data = send(srv, method, path, query=query, bearer=path.startswith("/api"))
    assert status == 400, data


# -- the management plane ----------------------------------------------------------------------


@SETTINGS
@given(limit=NUMBERS)
@example(limit="²")
@example(limit="①")
def test_a_list_limit_is_ascii_digits_or_refused_as_problem_json(srv, limit):
    status, _, data = send(srv, "GET", "/api/v1/orgs/default/registries", query={"limit": limit}, bearer=True)
    if limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= 1000:
        assert status == 200, data
    else:
        assert status == 400 and json.loads(data)["code"] == "INVALID", data


@SETTINGS
@given(name=spoiled("team", longest=63))
@example(name="evil\n")
def test_a_registry_create_with_a_hostile_name_is_refused_and_stores_nothing(srv, name):
    with nothing_stored(srv):
        refused_on_api(
            srv,
            "POST",
            "/api/v1/orgs/default/registries",
            body=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )


def test_a_refused_registry_create_leaves_its_name_free(srv):
    for bad in (
        {"name": "free\n"},
        {"name": "free", "pull_namespaces": ["apps\n"]},
        {"name": "free", "visibility": "secret"},
    ):
        r = srv.api("POST", "/registries", json=bad)
        assert r.status_code == 400, r.text
    assert "free" not in [r["name"] for r in srv.api("GET", "/registries").json()["registries"]]
    r = srv.api("POST", "/registries", json={"name": "free"})
    assert r.status_code == 202, r.text
    assert srv.api.wait(r.json()["operation"])["state"] == "succeeded"


@SETTINGS
@given(name=spoiled("ci", longest=100))
@example(name="ci\n")
def test_a_token_with_a_hostile_name_is_refused_and_not_stored(srv, name):
    with nothing_stored(srv):
        refused_on_api(
            srv,
            "POST",
            "/api/v1/orgs/default/tokens",
            body=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )


@SETTINGS
@given(registry=spoiled("default", longest=100))
@example(registry="default\x00")
def test_a_token_for_a_hostile_registry_name_is_refused_and_not_stored(srv, registry):
    """The name reaches a query only once it is a registry name (PostgreSQL refuses NUL outright)."""
    with nothing_stored(srv):
        refused_on_api(
            srv,
            "POST",
            "/api/v1/orgs/default/tokens",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"name": "scoped", "registry": registry}).encode(),
        )


@SETTINGS
@given(name=spoiled("pull", longest=253))
@example(name="pull\n")
def test_credentials_under_a_hostile_secret_name_are_refused_and_issue_no_token(srv, name):
    with nothing_stored(srv):
        refused_on_api(
            srv,
            "POST",
            "/api/v1/orgs/default/registries/default/credentials",
            body=json.dumps({"k8s_secret_name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )


@SETTINGS
@given(token_id=st.sampled_from(["١", "٢", "0_1", "+1", "99999999999999999999", "1\n", "²"]))
def test_a_token_id_that_is_not_ascii_digits_revokes_nothing(srv, token_id):
    with nothing_stored(srv):
        refused_on_api(srv, "DELETE", f"/api/v1/orgs/default/tokens/{token_id}")


@SETTINGS
@given(subject=spoiled("alice", longest=255))
@example(subject="alice\n")
def test_a_member_with_a_hostile_subject_is_refused_and_not_stored(srv, subject):
    with nothing_stored(srv):
        refused_on_api(
            srv,
            "PUT",
            f"/api/v1/orgs/default/members/{subject}",
            body=b'{"role": "reader"}',
            headers={"Content-Type": "application/json"},
        )


@SETTINGS
@given(domain=spoiled("images.example.com", longest=253))
@example(domain="images.example.com\n")
def test_a_hostile_custom_domain_is_refused_and_not_stored(srv, domain):
    try:
        with nothing_stored(srv):
            refused_on_api(
                srv,
                "PATCH",
                "/api/v1/orgs/default/registries/default",
                body=json.dumps({"custom_domain": domain}).encode(),
                headers={"Content-Type": "application/json"},
            )
    finally:  # a stored domain must not outlive this test
        srv.api("PATCH", "/registries/default", json={"custom_domain": None})
