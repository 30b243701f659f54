"""Client-written JSON: nesting is measured without recursion, strings do not count as structure,
and every refusal is an UntrustedJsonError (never RecursionError, never a bare ValueError)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import untrusted_json
from app.untrusted_json import UntrustedJsonError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    "text, depth",
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('"[[[["', 0),
        ('["]\\"[["]', 1),
        ("[[]][]", 2),
    ],
)
def test_depth_counts_brackets_outside_strings(text, depth):
    assert untrusted_json.depth(text.encode()) == depth


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_depth_agrees_with_the_structure_of_any_document(value):
    assert untrusted_json.depth(json.dumps(value).encode()) == _depth(value)


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_what_a_client_wrote_reads_back(value):
    text = json.dumps(value, ensure_ascii=False)
    assert untrusted_json.loads(text.encode()) == value == untrusted_json.loads(text)


def test_a_document_at_the_limit_is_read_and_one_deeper_is_refused():
    assert untrusted_json.loads(b"[" * 3 + b"]" * 3, max_depth=3) == [[[]]]
    with pytest.raises(UntrustedJsonError, match="deeper than 3"):
        untrusted_json.loads(b"[" * 4 + b"]" * 4, max_depth=3)


def test_a_million_brackets_is_refused_not_a_recursion_error():
    with pytest.raises(UntrustedJsonError, match="deeper than 64"):
        untrusted_json.loads(b"[" * 1_000_000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"[NaN]", "NaN"),
        (b"Infinity", "Infinity"),
        (b"-Infinity", "Infinity"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"1" * 5000, "not valid JSON"),
    ],
)
def test_what_is_not_json_is_refused_by_name(data, message):
    with pytest.raises(UntrustedJsonError, match=message):
        untrusted_json.loads(data)


def test_a_utf8_byte_order_mark_is_taken():
    assert untrusted_json.loads(b"\xef\xbb\xbf{}") == {}


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100) | st.text(alphabet='[]{}",:\\ 0123456789.eENaI', max_size=100))
def test_any_input_is_a_value_or_an_untrusted_json_error(data):
    try:
        untrusted_json.loads(data)
    except UntrustedJsonError:
        pass
