"""The `Content-Range` of an upload chunk (`<first>-<last>`, inclusive), read the same way by the
upload routes and by the spool that hashes a chunk while it arrives (app/server/spool.py)."""

from __future__ import annotations

import re

# spec.md: "It MUST match the following regular expression: `^[0-9]+-[0-9]+$`". Also taken: the
# `bytes ` / `bytes=` unit and a `/<size>` suffix some clients send. ASCII digits, at most 19 (an
# int64): `\d` takes other scripts' digits, and int() refuses past 4300.
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?\Z")


def parse(header: str) -> tuple[int, int] | None:
    """(first, last) byte positions of the chunk, or None when the header is malformed."""
    m = _CONTENT_RANGE.fullmatch(header.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None
