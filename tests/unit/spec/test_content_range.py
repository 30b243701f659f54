"""An upload chunk's Content-Range: what the spec's form and clients' variants read as, and that
anything else is None (never an exception), since the header is client input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.spec import content_range


@pytest.mark.parametrize(
    "header, expected",
    [
        ("0-99", (0, 99)),
        ("bytes 100-199", (100, 199)),
        ("bytes=0-0", (0, 0)),
        ("5-9/10", (5, 9)),
        ("5-9/*", (5, 9)),
        ("  0-1 ", (0, 1)),
        ("9223372036854775807-9223372036854775807", (2**63 - 1, 2**63 - 1)),
    ],
)
def test_the_forms_clients_send_are_read(header, expected):
    assert content_range.parse(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "-",
        "1-",
        "-5",
        "a-b",
        "0\n-99",
        "0-99\nX",
        "bytes: 0-1",
        "0-1/",
        "0-1/x",
        "١-٢",
        "١-1",
        "1-١",  # Arabic-Indic digits: int() reads them, the spec does not
        "1" * 20 + "-1",
    ],
)
def test_anything_else_is_none(header):
    assert content_range.parse(header) is None


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_a_written_range_reads_back(first, last):
    assert content_range.parse(f"{first}-{last}") == (first, last)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_pair_of_ascii_numbers_or_none(header):
    parsed = content_range.parse(header)
    assert parsed is None or (header.strip().isascii() and all(0 <= n < 2**63 for n in parsed))
