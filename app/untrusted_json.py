"""Parsing JSON that a client wrote: bounded depth, strict numbers, and no RecursionError.

Python's `json` recurses once per nesting level, so a body of a million `[` (a few bytes to
send) raised RecursionError deep in a request and answered 500. Every client-written document
(manifests, `/api/v1` bodies, pagination cursors, image configs shown by browse) is parsed here:
its nesting is measured by a scan that does not recurse before `json.loads` sees it.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

# Deep enough for any manifest, index, image config or API body (they nest 3 to 6 levels).
DEFAULT_MAX_DEPTH = 64

# A JSON string, escapes included: what it holds is text, not structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
# An opening bracket steps one level in (+1), a closing one out (-1 as a signed byte).
_STEPS = bytes.maketrans(_BRACKETS, b"\x01\xff\x01\xff")


class UntrustedJsonError(ValueError):
    """Not JSON, or JSON this server refuses (too deep, NaN/Infinity). The message is a predicate
    ("nests deeper than 64 levels") for the caller to put its noun before: "manifest ..."."""


def depth(data: bytes) -> int:
    """How deeply `data`'s arrays and objects nest (0 for a scalar), without recursing; every
    step runs in C (regex, translate, accumulate), so a 4 MiB manifest costs milliseconds."""
    if data.count(b"[") + data.count(b"{") <= 1:
        return int(data.lstrip()[:1] in (b"[", b"{"))  # at most one container: no scan needed
    steps = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", steps)), default=0)


def loads(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH):
    """The JSON value in `data`; UntrustedJsonError when it is not UTF-8 JSON, nests deeper
    than `max_depth`, or uses the non-standard constants NaN and Infinity that `json` accepts."""
    try:
        # UTF-8 only (RFC 8259), decoded here rather than guessed by `json` (UTF-16 too): in
        # UTF-8 a quote or bracket byte is always that character, which the scan relies on.
        text = data if isinstance(data, str) else bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UntrustedJsonError("is not valid JSON: not UTF-8") from None
    raw = text.encode("utf-8", "surrogatepass")
    # Fewer opening brackets than the limit (strings' included) cannot nest past it: no scan.
    if raw.count(b"[") + raw.count(b"{") > max_depth and depth(raw) > max_depth:
        raise UntrustedJsonError(f"nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # cannot happen after the scan; kept so it can never become a 500
        raise UntrustedJsonError(f"nests deeper than {max_depth} levels") from None
    except UntrustedJsonError:
        raise
    except ValueError as e:  # JSONDecodeError, or an integer of more than 4300 digits
        raise UntrustedJsonError(f"is not valid JSON: {e}") from None


def _refuse_constant(name: str):
    raise UntrustedJsonError(f"uses {name}, which is not a JSON number")
