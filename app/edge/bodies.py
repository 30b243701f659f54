"""The request media handlers: what a JSON body (`/api/v1`) or an OAuth2 form (`/auth/token`)
may cost to parse. Each is read up to a size limit, and JSON up to a nesting depth
(app/untrusted_json.py); past either, the client gets a 4xx naming the limit, never a 500.
Other media types (multipart among them) are refused with 415: nothing here takes them."""

from __future__ import annotations

from functools import partial

import falcon
import falcon.media

from app import untrusted_json
from app.spec.errors import RegistryError


def _read_at_most(stream, content_length: int | None, limit: int) -> bytes:
    if content_length is not None and content_length > limit:
        raise _too_large(limit)  # refused before a byte is read
    data = stream.read(limit + 1)
    if len(data) > limit:  # no Content-Length to trust (or a wrong one)
        raise _too_large(limit)
    return data


def _too_large(limit: int) -> RegistryError:
    return RegistryError("PAYLOAD_TOO_LARGE", f"the request body exceeds the {limit}-byte limit", status=413)


class BoundedJSONHandler(falcon.media.JSONHandler):
    def __init__(self, max_bytes: int, max_depth: int) -> None:
        super().__init__(loads=partial(untrusted_json.loads, max_depth=max_depth))
        self.max_bytes = max_bytes

    def deserialize(self, stream, content_type, content_length):
        return self._deserialize(_read_at_most(stream, content_length, self.max_bytes))


class BoundedFormHandler(falcon.media.URLEncodedFormHandler):
    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    def deserialize(self, stream, content_type, content_length):
        return self._deserialize(_read_at_most(stream, content_length, self.max_bytes))


def request_handlers(max_bytes: int, max_depth: int) -> falcon.media.Handlers:
    return falcon.media.Handlers(
        {
            falcon.MEDIA_JSON: BoundedJSONHandler(max_bytes, max_depth),
            falcon.MEDIA_URLENCODED: BoundedFormHandler(max_bytes),
        }
    )
