"""Every parser of client input answers with a value or a 4xx RegistryError, whatever it is fed:
JSON bodies, manifests, digests, Range and Content-Range headers, token scopes, Basic
credentials and pagination cursors. Property-based, because the inputs that crashed them (a
million `[`, `NaN`, a 5,000-digit number, `²`) were never in anyone's list of examples; and,
for each, what it accepts round-trips: the parser reads back what a well-behaved client wrote.
"""

from __future__ import annotations

import base64
import io
import json

import falcon
import falcon.testing
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app import untrusted_json
from app.api import pagination
from app.auth.registry_tokens import ACTIONS, parse_scopes
from app.auth.token_secrets import parse_basic
from app.edge.bodies import BoundedFormHandler, BoundedJSONHandler
from app.oci.blobs import parse_range
from app.services.manifests import parse_manifest
from app.spec import content_range, digests
from app.spec import media_types as mt
from app.spec.errors import RegistryError

SETTINGS = settings(max_examples=300, deadline=None)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
# Text that looks like JSON often enough to reach the parser's corners.
JSONISH = st.text(alphabet='[]{}",:\\ 0123456789.eE+-truefalsnNaIiy\x00\u2028é', max_size=200)


def nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


def refused_with_4xx(error: RegistryError) -> bool:
    return 400 <= error.status < 500


# JSON -------------------------------------------------------------------------------------------


@SETTINGS
@given(JSON_VALUES)
def test_the_depth_scan_measures_what_json_nests(value):
    assert untrusted_json.depth(json.dumps(value).encode()) == nesting(value)


@SETTINGS
@given(JSON_VALUES)
def test_json_within_the_depth_limit_reads_back_as_written(value):
    assert untrusted_json.loads(json.dumps(value).encode(), max_depth=nesting(value)) == value


@SETTINGS
@given(JSON_VALUES)
def test_json_one_level_past_the_limit_is_refused(value):
    with pytest.raises(untrusted_json.UntrustedJsonError, match="deeper than"):
        untrusted_json.loads(json.dumps([value]).encode(), max_depth=nesting(value))


@SETTINGS
@given(st.one_of(st.binary(max_size=200), JSONISH.map(str.encode), st.integers(1, 200_000).map(lambda n: b"[" * n)))
@example(b"[" * 1_000_000)
@example(b"1" * 5000)
@example(b"NaN")
@example(b'"\\ud800"')
def test_any_bytes_are_json_or_an_untrusted_json_error(data):
    try:
        untrusted_json.loads(data)
    except untrusted_json.UntrustedJsonError:
        pass


@SETTINGS
@given(st.binary(max_size=300))
def test_a_json_body_is_parsed_or_refused_with_a_4xx_never_a_crash(data):
    handler = BoundedJSONHandler(max_bytes=200, max_depth=8)
    try:
        handler.deserialize(io.BytesIO(data), falcon.MEDIA_JSON, len(data))
    except (falcon.MediaMalformedError, falcon.MediaNotFoundError):  # 400s; no body is "no media"
        pass
    except RegistryError as e:
        assert e.status == 413 and len(data) > 200


@SETTINGS
@given(st.binary(max_size=300))
def test_a_form_body_is_parsed_or_refused_with_a_4xx_never_a_crash(data):
    try:
        form = BoundedFormHandler(max_bytes=200).deserialize(io.BytesIO(data), falcon.MEDIA_URLENCODED, None)
        assert isinstance(form, dict)
    except falcon.MediaMalformedError:
        pass
    except RegistryError as e:
        assert e.status == 413 and len(data) > 200


# Manifests --------------------------------------------------------------------------------------

DIGESTS = st.one_of(st.binary().map(lambda b: str(digests.of_bytes(b))), st.text(max_size=80))
DESCRIPTOR = st.fixed_dictionaries(
    {
        "mediaType": st.text(max_size=20),
        "digest": DIGESTS,
        "size": st.one_of(st.integers(), st.floats(), st.text(max_size=3)),
    }
)
MANIFEST_DOCS = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from([2, 2, 1, "2"])},
    optional={
        "mediaType": st.sampled_from(sorted(mt.MANIFESTS)),
        "config": DESCRIPTOR,
        "layers": st.lists(DESCRIPTOR, max_size=3),
        "manifests": st.lists(DESCRIPTOR, max_size=3),
        "subject": st.one_of(DESCRIPTOR, JSON_VALUES),
        "annotations": JSON_VALUES,
        "artifactType": JSON_VALUES,
    },
)


@SETTINGS
@given(
    st.sampled_from(sorted(mt.MANIFESTS) + ["text/plain", ""]),
    st.one_of(MANIFEST_DOCS.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)),
)
@example(mt.OCI_MANIFEST, b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
@example(mt.OCI_INDEX, b'{"schemaVersion": 2, "manifests": [], "x": NaN}')
def test_a_manifest_is_parsed_or_refused_with_a_4xx_never_a_crash(content_type, body):
    try:
        parsed = parse_manifest(content_type, body)
    except RegistryError as e:
        assert refused_with_4xx(e)
        return
    assert parsed.media_type == content_type
    for digest in parsed.blobs + parsed.children:
        assert str(digests.parse(digest)) == digest


# Digests, ranges, scopes, credentials, cursors --------------------------------------------------


@SETTINGS
@given(st.binary(), st.sampled_from(sorted(digests.ALGORITHMS)))
def test_a_computed_digest_parses_back_to_itself(data, algorithm):
    digest = digests.of_bytes(data, algorithm)
    assert digests.parse(str(digest)) == digest


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_is_a_digest_or_digest_invalid(text):
    try:
        digests.parse(text)
    except RegistryError as e:
        assert e.code == "DIGEST_INVALID"


@SETTINGS
@given(st.integers(0, 10**6), st.integers(0, 2**70), st.integers(0, 2**70))
def test_a_served_range_lies_inside_the_blob(size, a, b):
    for header in (f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b}"):
        try:
            start, end = parse_range(header, size)
        except RegistryError as e:
            assert e.code == "RANGE_INVALID" and e.status == 416
            continue
        assert 0 <= start <= end < size


@SETTINGS
@given(st.text(alphabet="bytes =-/*0123456789²١５", max_size=60) | st.text(max_size=60))
def test_a_content_range_the_server_accepts_holds_two_int64_positions(header):
    parsed = content_range.parse(header)
    if parsed:
        assert all(0 <= position < 10**19 for position in parsed)


@SETTINGS
@given(st.text(max_size=100))
def test_any_scope_text_yields_only_well_formed_scopes(text):
    for scope in parse_scopes([text]):
        assert scope.type in ("repository", "registry") and ":" not in scope.name
        assert all(a.isascii() and a for a in scope.actions)


@SETTINGS
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/", min_size=1, max_size=60),
    st.lists(st.sampled_from(ACTIONS), min_size=1, unique=True),
)
def test_a_well_formed_scope_reads_back_as_written(name, actions):
    (scope,) = parse_scopes([f"repository:{name}:{','.join(actions)}"])
    assert (scope.type, scope.name, scope.actions) == ("repository", name, tuple(actions))


@SETTINGS
@given(st.text(max_size=40).filter(lambda u: ":" not in u), st.text(max_size=80))
def test_basic_credentials_read_back_as_written(username, password):
    header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    assert parse_basic(header) == (username, password)


@SETTINGS
@given(st.text(max_size=200))
@example("Basic " + "=" * 3)
@example("Basic " + base64.b64encode(b"\xff:\xfe").decode())
def test_any_authorization_header_is_credentials_or_none(header):
    result = parse_basic(header)
    assert result is None or (isinstance(result, tuple) and len(result) == 2)


def cursor_request(raw: str):
    return falcon.testing.create_req(query_string="cursor=" + falcon.uri.encode_value(raw))


@SETTINGS
@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=40).filter(str.isprintable)))
def test_a_cursor_the_server_issued_reads_back_as_its_key(key):
    kind = int if isinstance(key, int) else str
    assert pagination.decode(cursor_request(pagination.encode(key)), kind) == key


@SETTINGS
@given(st.one_of(st.text(max_size=60), JSON_VALUES.map(lambda v: pagination.encode(v))), st.sampled_from([int, str]))
@example(pagination.encode(2**64), int)
@example(base64.urlsafe_b64encode(b"[" * 5000).decode(), str)
def test_any_cursor_is_a_key_of_the_lists_type_or_invalid(raw, kind):
    try:
        key = pagination.decode(cursor_request(raw), kind)
    except RegistryError as e:
        assert e.code == "INVALID" and e.status == 400
        return
    assert type(key) is kind
