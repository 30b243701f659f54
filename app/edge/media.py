"""Reading JSON request bodies on `/api/v1`: one rule for what a bad body gets back."""

from __future__ import annotations

from typing import Literal, overload

import falcon

from app import untrusted_json
from app.spec.errors import RegistryError


def object_of(req: falcon.Request, *, example: str, allowed: set[str] | None = None, optional: bool = False) -> dict:
    """The request's JSON object; INVALID naming the problem otherwise. With `allowed`, an
    unknown field is refused by name (a typo must not be silently ignored)."""
    try:
        body = req.get_media(default_when_empty=None)
    except falcon.MediaMalformedError as e:
        why = e.__cause__ if isinstance(e.__cause__, untrusted_json.UntrustedJsonError) else "is not valid JSON"
        raise RegistryError("INVALID", f"the body {why}; send an object such as {example}") from None
    if body is None and optional and not req.content_length:
        return {}  # no body at all (a literal `null` is not an object)
    if not isinstance(body, dict):
        raise RegistryError("INVALID", f"send a JSON object such as {example}")
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise RegistryError("INVALID", f"unknown field {unknown[0]!r}; fields: {sorted(allowed)}", field=unknown[0])
    return body


@overload
def string_field(body: dict, name: str, *, required: Literal[True], max_length: int = 255) -> str: ...
@overload
def string_field(body: dict, name: str, *, required: bool = False, max_length: int = 255) -> str | None: ...
def string_field(body: dict, name: str, *, required: bool = False, max_length: int = 255) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RegistryError("INVALID", f"{name} is required", field=name)
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise RegistryError(
            "INVALID", f"{name} must be a non-empty string of at most {max_length} characters", field=name
        )
    return value


def query(req: falcon.Request, name: str) -> str | None:
    """A query parameter, keeping an empty value as "" (falcon drops blanks by default), so that
    `?since=` is refused as a bad time rather than read as no filter."""
    if name + "=" not in req.query_string:
        return req.get_param(name)
    values = falcon.uri.parse_query_string(req.query_string, keep_blank=True).get(name)
    return values[-1] if isinstance(values, list) else values
