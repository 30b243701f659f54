"""The OpenAPI 3.1 document of the data plane (`/v2`, the OCI Distribution API as Berth serves
it), served at `/api/v1/openapi/distribution.json`: `/v2/` is the registry's own namespace, where
every path is a repository, so the description lives with the management plane's.

Written by hand from app/oci/; tests/integration/test_openapi_data_plane.py runs schemathesis
against the live server with it (valid and invalid requests, a token that can push), so the
document and the server cannot drift apart.
"""

from __future__ import annotations

import falcon

from app.services.manifests import MAX_TAGS_PER_PUSH
from app.spec import media_types as mt
from app.spec.errors import CODES

JSON = "application/json"
STR = {"type": "string"}
MANIFEST_TYPES = sorted(mt.MANIFESTS)
# app/spec/digests.py and app/spec/names.py, as JSON Schema patterns.
# Digests: the two algorithms served (any other is DIGEST_INVALID).
DIGEST = r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {"description": description, "required": required, "schema": schema or STR}


DIGEST_HEADER = _header("The content's digest.", required=True, schema={"type": "string", "pattern": DIGEST})
LOCATION = _header("Where the resource (or the upload session) is.", required=True)
UPLOAD_HEADERS = {
    "Location": _header("The session's URL: PATCH, PUT, GET or DELETE it.", required=True),
    "Docker-Upload-UUID": _header("The session's id.", required=True),
    "Range": _header(
        "Bytes received so far, `0-<last byte>` (`0-0` when none).",
        required=True,
        schema={"type": "string", "pattern": "^0-[0-9]+$"},
    ),
}

SCHEMAS: dict = {
    "ErrorEnvelope": {
        "type": "object",
        "required": ["errors"],
        "description": "The distribution spec's error envelope; `request_id` names the request in the server log.",
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string", "enum": sorted(CODES)}, "message": STR, "detail": {}},
                },
            },
            "request_id": {"type": ["string", "null"]},
        },
    },
    "Descriptor": {
        "type": "object",
        "required": ["mediaType", "digest", "size"],
        "properties": {
            "mediaType": {"type": "string", "minLength": 1},
            "digest": {"type": "string", "pattern": DIGEST},
            "size": {"type": "integer", "minimum": 0},
            "urls": {"type": "array", "items": STR},
            "annotations": {"type": "object", "additionalProperties": STR},
            "artifactType": STR,
            "platform": {"type": "object"},
        },
    },
    "Manifest": {
        "type": "object",
        "required": ["schemaVersion"],
        "description": "An image manifest (`config`, `layers`) or an index (`manifests`), as its Content-Type "
        "says; `mediaType`, when present, must equal the Content-Type (Docker types require it). "
        "Every blob and manifest referenced must already be in the repository, except "
        "non-distributable layers. At most BERTH_MAX_MANIFEST_BYTES (4 MiB) and "
        "BERTH_MAX_JSON_DEPTH (64) levels of nesting.",
        "properties": {
            "schemaVersion": {"const": 2},
            "mediaType": {"type": "string", "enum": MANIFEST_TYPES},
            "artifactType": STR,
            "config": _ref("Descriptor"),
            "layers": {"type": "array", "items": _ref("Descriptor")},
            "manifests": {"type": "array", "items": _ref("Descriptor")},
            "subject": _ref("Descriptor"),
            "annotations": {"type": "object", "additionalProperties": STR},
        },
    },
    "Index": {
        "type": "object",
        "required": ["schemaVersion", "mediaType", "manifests"],
        "properties": {
            "schemaVersion": {"const": 2},
            "mediaType": {"const": mt.OCI_INDEX},
            "manifests": {"type": "array", "items": _ref("Descriptor")},
        },
    },
    "TagList": {
        "type": "object",
        "required": ["name", "tags"],
        "properties": {"name": STR, "tags": {"type": "array", "items": STR}},
    },
    "Catalog": {
        "type": "object",
        "required": ["repositories"],
        "properties": {"repositories": {"type": "array", "items": STR}},
    },
}

ERROR_DESCRIPTIONS = {
    "400": "Malformed name, reference, digest, number or body (NAME_INVALID, MANIFEST_INVALID, DIGEST_INVALID, "
    "BLOB_UPLOAD_INVALID, SIZE_INVALID, PAGINATION_NUMBER_INVALID, ...).",
    "401": "No or bad credentials (UNAUTHORIZED); `WWW-Authenticate` says where to get a token, for what scope.",
    "403": "The caller may not do this here, or a quota or tag-immutability rule refuses it (DENIED).",
    "404": "No such registry, repository, manifest, blob or upload session.",
    "405": "Not allowed here (UNSUPPORTED), e.g. deleting by tag when the registry does not allow it.",
    "409": "In conflict with the registry's state.",
    "413": "The body is larger than the limit (a manifest: BERTH_MAX_MANIFEST_BYTES).",
    "414": f"More than {MAX_TAGS_PER_PUSH} `tag` parameters on one manifest push (MANIFEST_INVALID).",
    "415": "Unsupported media type.",
    "416": "The Range or Content-Range cannot be served or does not continue the upload (RANGE_INVALID).",
    "429": "Too many requests from this address (TOOMANYREQUESTS); `Retry-After` says when to retry.",
}
ERROR_HEADERS = {
    "401": {"WWW-Authenticate": _header("`Bearer realm=...,service=...,scope=...`", required=True)},
    "429": {"Retry-After": _header("Seconds until a retry may succeed.")},
}
COMMON = ("400", "401", "403", "404", "429")


def _errors(*statuses: str, head: bool = False) -> dict:
    """Error responses; a HEAD's carry no body."""
    out = {}
    for status in statuses:
        response: dict = {"description": ERROR_DESCRIPTIONS[status]}
        if status in ERROR_HEADERS:
            response["headers"] = ERROR_HEADERS[status]
        if not head:
            response["content"] = {JSON: {"schema": _ref("ErrorEnvelope")}}
        out[status] = response
    return out


def _responses(ok: dict, *extra: str, head: bool = False) -> dict:
    return {**_errors(*COMMON, *extra, head=head), **ok}


def _param(name: str, where: str, schema: dict, description: str = "", required: bool | None = None) -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path" if required is None else required,
        "schema": schema,
        **({"description": description} if description else {}),
    }


NAME = _param(
    "name",
    "path",
    {"type": "string", "maxLength": 255, "pattern": f"^{COMPONENT}(?:/{COMPONENT})*$"},
    "The repository. On the shared endpoint it starts with the registry: `<registry>/<repository>`; "
    "on a registry's own host (`<registry>.<BERTH_DOMAIN>`) it is the repository alone. Its `/` are "
    "sent as they are (%2F works too).",
)
REFERENCE = _param(
    "reference", "path", {"type": "string", "pattern": f"^(?:{TAG}|{DIGEST[1:-1]})$"}, "A tag or a digest."
)
DIGEST_PARAM = _param("digest", "path", {"type": "string", "pattern": DIGEST})
SESSION = _param(
    "session",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 64},
    "The upload session's id (the last segment of its `Location`).",
)
PAGE = [
    _param(
        "n",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 999_999_999},
        "At most this many entries (ASCII digits only).",
    ),
    _param(
        "last",
        "query",
        STR,
        'Start after this entry (lexical order); with `n`, a `Link: rel="next"` header gives the next page.',
    ),
]
LINK = {"Link": _header('`<...?n=N&last=L>; rel="next"` when there are more.')}
DIGEST_QUERY = _param("digest", "query", {"type": "string", "pattern": DIGEST}, required=False)
# On POST an empty `digest=` or `mount=` is no digest, as in Distribution: a session is opened.
DIGEST_OR_EMPTY = {"type": "string", "pattern": f"^(?:{DIGEST[1:-1]})?$"}
# A push by digest may tag it too (distribution-spec, "Pushing Manifests": `?tag=a&tag=b`).
TAGS_QUERY = {
    **_param(
        "tag",
        "query",
        {"type": "array", "items": {"type": "string", "pattern": f"^{TAG}$"}, "maxItems": MAX_TAGS_PER_PUSH},
        f"Tags to point at the manifest, with a push by digest only (400 with a push by tag): "
        f"each a tag, at most {MAX_TAGS_PER_PUSH} (414 past it). All are applied or none: one "
        "that is not a tag, or an immutable tag held by another digest, refuses the push.",
        required=False,
    ),
    "style": "form",
    "explode": True,
}
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
MANIFEST_CONTENT = {t: {"schema": _ref("Manifest")} for t in MANIFEST_TYPES}


def _manifest_read(head: bool) -> dict:
    headers = {"Docker-Content-Digest": DIGEST_HEADER, "ETag": _header("The digest, quoted.")}
    ok = {"description": "The manifest, as pushed (byte for byte)", "headers": headers}
    if not head:
        ok["content"] = MANIFEST_CONTENT
    return {
        "operationId": "headManifest" if head else "getManifest",
        "parameters": [_param("Accept", "header", STR, "The manifest types the client takes.", required=False)],
        "responses": _responses({"200": ok}, head=head),
    }


def _blob_read(head: bool) -> dict:
    headers = {"Docker-Content-Digest": DIGEST_HEADER, "Content-Length": _header("Bytes in this response.")}
    partial = {**headers, "Content-Range": _header("`bytes first-last/size`", required=True)}
    ok = {"description": "The blob", "headers": headers}
    part = {"description": "The requested range of the blob", "headers": partial}
    if not head:
        ok["content"] = part["content"] = BINARY
    responses = {"200": ok, "206": part}
    if not head:
        responses["307"] = {
            "description": "Fetch it from the blob store (BERTH_STORAGE_REDIRECT)",
            "headers": {"Location": LOCATION},
        }
    return {
        "operationId": "headBlob" if head else "getBlob",
        "parameters": [
            _param(
                "Range",
                "header",
                {"type": "string"},
                "`bytes=first-last`, `bytes=first-` or `bytes=-suffix` (one range).",
                required=False,
            )
        ],
        "responses": _responses(responses, "416", head=head),
    }


CREATED_BLOB = {
    "201": {
        "description": "The blob is stored",
        "headers": {"Location": LOCATION, "Docker-Content-Digest": DIGEST_HEADER},
    }
}

PATHS: dict = {
    "/v2/": {
        "get": {
            "operationId": "checkVersion",
            "summary": "Is this a registry, and do these credentials work?",
            "responses": _responses({"200": {"description": "Yes", "content": {JSON: {"schema": {"type": "object"}}}}}),
        }
    },
    "/v2/_catalog": {
        "get": {
            "operationId": "listRepositories",
            "description": "On a registry's own host, its repositories; on the shared endpoint, every repository the "
            "caller may browse, as `<registry>/<repository>`.",
            "parameters": PAGE,
            "responses": _responses(
                {
                    "200": {
                        "description": "Repository names, in lexical order",
                        "headers": LINK,
                        "content": {JSON: {"schema": _ref("Catalog")}},
                    }
                }
            ),
        }
    },
    "/v2/{name}/tags/list": {
        "parameters": [NAME],
        "get": {
            "operationId": "listTags",
            "parameters": PAGE,
            "responses": _responses(
                {
                    "200": {
                        "description": "Tags, in lexical order",
                        "headers": LINK,
                        "content": {JSON: {"schema": _ref("TagList")}},
                    }
                }
            ),
        },
    },
    "/v2/{name}/manifests/{reference}": {
        "parameters": [NAME, REFERENCE],
        "get": _manifest_read(head=False),
        "head": _manifest_read(head=True),
        "put": {
            "operationId": "putManifest",
            "description": "The Content-Type must be the manifest's type. By tag it moves the tag (unless "
            "the repository's tags are immutable); by digest the body must hash to it, and "
            "`tag` parameters tag it in the same request, all or none.",
            "parameters": [TAGS_QUERY],
            "requestBody": {"required": True, "content": MANIFEST_CONTENT},
            "responses": _responses(
                {
                    "201": {
                        "description": "Stored",
                        "headers": {
                            "Location": LOCATION,
                            "Docker-Content-Digest": DIGEST_HEADER,
                            "OCI-Subject": _header("The subject's digest, when the manifest has one."),
                            "OCI-Tag": _header(
                                "One header line per tag applied by the `tag` parameters, in their order "
                                "(absent without them)."
                            ),
                        },
                    }
                },
                "413",
                "414",
                "415",
            ),
        },
        "delete": {
            "operationId": "deleteManifest",
            "description": "By digest: the manifest and its tags. By tag: the tag.",
            "responses": _responses({"202": {"description": "Deleted"}}, "405"),
        },
    },
    "/v2/{name}/blobs/{digest}": {
        "parameters": [NAME, DIGEST_PARAM],
        "get": _blob_read(head=False),
        "head": _blob_read(head=True),
        "delete": {"operationId": "deleteBlob", "responses": _responses({"202": {"description": "Deleted"}}, "405")},
    },
    "/v2/{name}/blobs/uploads/": {
        "parameters": [NAME],
        "post": {
            "operationId": "startUpload",
            "description": "No query: open a session (202). `digest`: the body is the whole blob (201). `mount` "
            "(and `from`, a repository of the same registry): link a blob the caller may pull "
            "(201), or open a session when it cannot be mounted (202).",
            "parameters": [
                _param("digest", "query", DIGEST_OR_EMPTY, required=False),
                _param("mount", "query", DIGEST_OR_EMPTY, required=False),
                _param("from", "query", STR, "The repository to mount from.", required=False),
                _param(
                    "Content-Range",
                    "header",
                    STR,
                    "`0-last` of the body, when sent: the first chunk of an upload starts at 0.",
                    required=False,
                ),
            ],
            "requestBody": {"required": False, "content": BINARY},
            "responses": _responses(
                {**CREATED_BLOB, "202": {"description": "A session is open", "headers": UPLOAD_HEADERS}}, "413", "416"
            ),
        },
    },
    "/v2/{name}/blobs/uploads/{session}": {
        "parameters": [NAME, SESSION],
        "get": {
            "operationId": "getUpload",
            "responses": _responses({"204": {"description": "How far the session is", "headers": UPLOAD_HEADERS}}),
        },
        "patch": {
            "operationId": "appendUpload",
            "parameters": [
                _param(
                    "Content-Range",
                    "header",
                    STR,
                    "`first-last` of this chunk: it must continue where the session stands.",
                    required=False,
                )
            ],
            "requestBody": {"required": False, "content": BINARY},
            "responses": _responses({"202": {"description": "Appended", "headers": UPLOAD_HEADERS}}, "413", "416"),
        },
        "put": {
            "operationId": "finishUpload",
            "description": "The body (possibly empty) is the last bytes; the whole must hash to `digest`.",
            "parameters": [
                {**DIGEST_QUERY, "required": True},
                _param(
                    "Content-Range",
                    "header",
                    STR,
                    "`first-last` of the last bytes, when sent: they must continue where the session stands.",
                    required=False,
                ),
            ],
            "requestBody": {"required": False, "content": BINARY},
            "responses": _responses(CREATED_BLOB, "413", "416"),
        },
        "delete": {"operationId": "cancelUpload", "responses": _responses({"204": {"description": "Cancelled"}})},
    },
    "/v2/{name}/referrers/{digest}": {
        "parameters": [NAME, DIGEST_PARAM],
        "get": {
            "operationId": "listReferrers",
            "parameters": [
                _param("artifactType", "query", STR, "Only referrers of this artifact type.", required=False)
            ],
            "responses": _responses(
                {
                    "200": {
                        "description": "The manifests whose `subject` is the digest, as an index (empty when none)",
                        "headers": {"OCI-Filters-Applied": _header("`artifactType` when the filter was applied.")},
                        "content": {mt.OCI_INDEX: {"schema": _ref("Index")}},
                    }
                }
            ),
        },
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Berth registry (OCI Distribution API)",
        "version": "1.1",
        "description": "The data plane: the OCI Distribution Specification v1.1 as Berth serves it "
        '(docs/api.md). Errors are the spec\'s envelope `{"errors": [{code, message, detail}]}`; '
        "every response carries `Docker-Distribution-API-Version: registry/2.0`. Credentials: "
        "Basic (a username and an access token) straight on `/v2`, or a Bearer registry token "
        "from `/auth/token`.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic", "description": "Any username and an access token"},
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A registry token from /auth/token",
            },
        },
    },
    "security": [{"basic": []}, {"bearer": []}, {}],
}


class DistributionOpenApiResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {**DOCUMENT, "servers": [{"url": f"{req.scheme}://{req.netloc}"}]}
