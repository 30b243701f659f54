"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`.

Written by hand next to the resources it describes; tests/integration/test_openapi.py runs
schemathesis against the live server with it, so a response that breaks it fails the build.
"""

from __future__ import annotations

import falcon

from app.spec.errors import CODES

JSON = "application/json"
PROBLEM = "application/problem+json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
NULLABLE_INT = {"type": ["integer", "null"]}
TIME = {"type": "string", "format": "date-time"}
# Case and one trailing dot are ignored (stored lowercase, without it); never BERTH_DOMAIN or under it.
HOSTNAME = r"^(?=.{1,254}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$"
NAMESPACE = {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"}
CURSOR = {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}

RETENTION_RULES = {
    "keep_last": {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": 100000,
        "description": "Keep the N most recently pushed tags of each repository.",
    },
    "keep_patterns": {
        "type": ["array", "null"],
        "maxItems": 100,
        "items": {"type": "string", "minLength": 1, "maxLength": 128},
        "description": "Keep tags whose name matches one of these globs.",
    },
    "expire_days": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 36500,
        "description": "Keep tags pushed or pulled within D days.",
    },
    "delete_untagged": {"type": "boolean", "description": "The run itself deletes manifests already untagged."},
}

SCHEMAS: dict = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details. `type` is stable per `code`.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": STR,
            "status": INT,
            "detail": STR,
            "code": {"type": "string", "enum": sorted(CODES)},
            "request_id": {"type": ["string", "null"]},
            "invalid_params": {
                "type": "array",
                "items": {"type": "object", "required": ["name", "reason"], "properties": {"name": STR, "reason": STR}},
            },
        },
    },
    "Usage": {
        "type": "object",
        "required": ["stored_bytes", "blobs", "repositories", "tags"],
        "properties": {"stored_bytes": INT, "blobs": INT, "repositories": INT, "tags": INT, "manifests": INT},
    },
    "Quota": {
        "type": "object",
        "required": ["sku", "limit_bytes", "used_bytes", "remaining_bytes"],
        "description": "The hard quota of the registry's SKU (null: none) and the bytes it stores.",
        "properties": {
            "sku": STR,
            "limit_bytes": NULLABLE_INT,
            "included_bytes": INT,
            "used_bytes": INT,
            "remaining_bytes": NULLABLE_INT,
        },
    },
    "Sku": {
        "type": "object",
        "required": ["name", "title", "included_bytes", "hard_limit_bytes", "price_per_gib", "currency", "default"],
        "properties": {
            "name": STR,
            "title": STR,
            "included_bytes": INT,
            "hard_limit_bytes": NULLABLE_INT,
            "price_per_gib": {"type": ["number", "null"]},
            "currency": STR,
            "default": {"type": "boolean"},
        },
    },
    "RepositoryUsage": {
        "type": "object",
        "required": ["name", "stored_bytes", "blobs", "tags", "manifests"],
        "properties": {"name": STR, "stored_bytes": INT, "blobs": INT, "tags": INT, "manifests": INT},
    },
    "Traffic": {
        "type": "object",
        "required": ["pulls", "pull_bytes", "pushes", "push_bytes"],
        "properties": {"pulls": INT, "pull_bytes": INT, "pushes": INT, "push_bytes": INT},
    },
    "UsageDay": {
        "type": "object",
        "required": ["day", "repository", "pulls", "pull_bytes", "pushes", "push_bytes"],
        "properties": {
            "day": {"type": "string", "format": "date"},
            "repository": STR,
            "pulls": INT,
            "pull_bytes": INT,
            "pushes": INT,
            "push_bytes": INT,
        },
    },
    "RegistryUsage": {
        "type": "object",
        "required": ["registry", "since", "until", "storage", "quota", "repositories", "traffic", "days"],
        "properties": {
            "registry": STR,
            "since": {"type": "string", "format": "date"},
            "until": {"type": "string", "format": "date"},
            "storage": {"$ref": "#/components/schemas/Usage"},
            "quota": {"$ref": "#/components/schemas/Quota"},
            "repositories": {"type": "array", "items": {"$ref": "#/components/schemas/RepositoryUsage"}},
            "traffic": {"$ref": "#/components/schemas/Traffic"},
            "days": {"type": "array", "items": {"$ref": "#/components/schemas/UsageDay"}},
        },
    },
    "Registry": {
        "type": "object",
        "required": ["name", "org", "visibility", "status", "endpoint", "path_endpoint", "created_at", "links"],
        "properties": {
            "name": STR,
            "org": STR,
            "visibility": {"type": "string", "enum": ["private", "public"]},
            "status": {"type": "string", "enum": ["provisioning", "ready", "failed", "deleting"]},
            "endpoint": STR,
            "path_endpoint": STR,
            "custom_domain": {"type": ["string", "null"], "description": "Routed only once verified."},
            "custom_domain_status": {"type": ["string", "null"], "enum": ["pending", "verified", None]},
            "custom_domain_verification": {
                "type": ["object", "null"],
                "required": ["type", "name", "value"],
                "description": "The DNS record that proves the claim: publish it, then POST .../custom-domain/verify.",
                "properties": {"type": {"const": "TXT"}, "name": STR, "value": STR},
            },
            "pull_namespaces": {"type": "array", "items": STR},
            "created_at": TIME,
            "created_by": {"type": ["string", "null"]},
            "usage": _ref("Usage"),
            "sku": STR,
            "quota": _ref("Quota"),
            "immutable_tags": {"type": "array", "items": STR},
            "manifest_policy": _ref("ManifestPolicy"),
            "links": {"type": "object", "additionalProperties": STR},
            "operation": _ref("Operation"),
        },
    },
    "RegistryCreate": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                "description": "A DNS label, unique in the deployment; not v2, api, auth, www, admin, static.",
            },
            "visibility": {"type": "string", "enum": ["private", "public"], "default": "private"},
            "custom_domain": {"type": ["string", "null"], "pattern": HOSTNAME},
            "pull_namespaces": {"type": ["array", "null"], "items": NAMESPACE, "maxItems": 50},
        },
    },
    "RegistryPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "visibility": {"type": "string", "enum": ["private", "public"]},
            "custom_domain": {"type": ["string", "null"], "pattern": HOSTNAME},
            "pull_namespaces": {"type": ["array", "null"], "items": NAMESPACE, "maxItems": 50},
            "sku": {
                "type": ["string", "null"],
                "description": "A name from GET /api/v1/skus (owner or admin only); null: the organization's SKU.",
            },
            "immutable_tags": {
                "type": ["array", "null"],
                "maxItems": 100,
                "items": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                "description": "Repository globs whose tags never move once pushed.",
            },
            "manifest_policy": {
                "oneOf": [_ref("ManifestPolicy"), {"type": "null"}],
                "description": "Replaces the whole policy; null: strict.",
            },
        },
    },
    "ManifestPolicy": {
        "type": "object",
        "required": ["mode"],
        "additionalProperties": False,
        "description": "What a manifest push may reference without the repository holding it: strict (everything "
        "must be present), index-sparse (an index's children may be absent, except those of "
        "required_platforms), sparse (blobs too).",
        "properties": {
            "mode": {"type": "string", "enum": ["strict", "index-sparse", "sparse"]},
            "required_platforms": {
                "type": ["array", "null"],
                "maxItems": 50,
                "items": {
                    "type": "string",
                    "pattern": "^[a-z0-9][a-z0-9._-]{0,31}/[a-z0-9][a-z0-9._-]{0,31}(/[a-z0-9][a-z0-9._-]{0,31})?$",
                },
                "description": "os/architecture[/variant]; only with index-sparse or sparse.",
            },
        },
    },
    "Step": {
        "type": "object",
        "required": ["name", "state"],
        "properties": {"name": STR, "state": STR, "started_at": TIME, "finished_at": TIME},
    },
    "Operation": {
        "type": "object",
        "required": ["id", "kind", "state", "org", "registry", "steps", "attempts", "log", "links"],
        "properties": {
            "id": STR,
            "kind": {"type": "string", "enum": ["create", "update", "delete"]},
            "state": {"type": "string", "enum": ["pending", "running", "succeeded", "failed"]},
            "org": STR,
            "registry": STR,
            "steps": {"type": "array", "items": _ref("Step")},
            "attempts": INT,
            "error": {"type": ["string", "null"]},
            "requested_by": {"type": ["string", "null"]},
            "created_at": TIME,
            "updated_at": TIME,
            "finished_at": {"type": ["string", "null"]},
            "log": {"type": "array", "items": STR},
            "links": {"type": "object", "additionalProperties": STR},
        },
    },
    "TreeEntry": {
        "type": "object",
        "required": ["type", "name", "path"],
        "properties": {
            "type": {"type": "string", "enum": ["folder", "repository"]},
            "name": STR,
            "path": STR,
            "repositories": INT,
            "tags": INT,
            "size": INT,
            "last_push": {"type": ["string", "null"]},
        },
    },
    "Platform": {
        "type": "object",
        "properties": {
            "digest": {"type": ["string", "null"]},
            "media_type": {"type": ["string", "null"]},
            "platform": {"type": ["string", "null"]},
            "size": {"type": ["integer", "null"]},
            "present": {"type": "boolean"},
        },
    },
    "Tag": {
        "type": "object",
        "required": ["name", "digest", "media_type", "size", "platforms", "pushed_at"],
        "properties": {
            "name": STR,
            "digest": STR,
            "media_type": STR,
            "artifact_type": {"type": ["string", "null"]},
            "size": INT,
            "manifest_size": INT,
            "platforms": {"type": "array", "items": _ref("Platform")},
            "pushed_at": TIME,
        },
    },
    "Descriptor": {
        "type": "object",
        "properties": {
            "digest": {},
            "media_type": {},
            "size": {},
            "annotations": {},
            "image": {},
            "present": {
                "type": "boolean",
                "description": "Whether the repository holds the blob "
                "(a sparse manifest policy lets manifests reference absent ones).",
            },
        },
    },
    "ManifestDetail": {
        "type": "object",
        "required": ["repository", "digest", "media_type", "size", "platforms", "tags"],
        "properties": {
            "repository": STR,
            "digest": STR,
            "media_type": STR,
            "artifact_type": {"type": ["string", "null"]},
            "manifest_size": INT,
            "subject": {"type": ["string", "null"]},
            "pushed_at": TIME,
            "tags": {"type": "array", "items": STR},
            "size": INT,
            "platforms": {"type": "array", "items": _ref("Platform")},
            "config": _nullable(_ref("Descriptor")),
            "layers": {"type": "array", "items": _ref("Descriptor")},
            "annotations": {},
            "referrers": {
                "type": "array",
                "description": "Manifests in the repository whose subject is this one "
                "(signatures, SBOMs, attestations)",
                "items": _ref("Referrer"),
            },
        },
    },
    "Referrer": {
        "type": "object",
        "required": ["digest", "media_type", "size"],
        "properties": {
            "digest": STR,
            "media_type": STR,
            "artifact_type": {"type": ["string", "null"]},
            "size": INT,
            "annotations": {},
        },
    },
    "Token": {
        "type": "object",
        "required": ["id", "name", "role"],
        "properties": {
            "id": INT,
            "name": STR,
            "role": STR,
            "registry": {"type": ["string", "null"]},
            "created_at": TIME,
            "created_by": {"type": ["string", "null"]},
            "expires_at": {"type": ["string", "null"]},
            "revoked_at": {"type": ["string", "null"]},
            "last_used_at": {"type": ["string", "null"]},
            # null, with `secret_withheld` saying why, in an Idempotency-Key replay
            "token": {"type": ["string", "null"]},
            "secret_withheld": STR,
        },
    },
    "TokenCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9 ._-]{1,100}$"},
            "scope": {"type": "string", "enum": ["pull", "push"]},
            "role": {"type": "string", "enum": ["owner", "admin", "developer", "reader"]},
            "registry": STR,
            "expires_in": {
                "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+[smhd]?$"}]
            },
        },
    },
    "CredentialsCreate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9 ._-]{1,100}$"},
            "push": {"type": "boolean", "default": False},
            # Default 90d (app/api/credentials.py DEFAULT_EXPIRY); null: never expires.
            "expires_in": {
                "default": "90d",
                "oneOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": "^[0-9]+[smhd]?$"},
                    {"type": "null"},
                ],
            },
            "k8s_secret_name": STR,
            "namespace": STR,
        },
    },
    "Credentials": {
        "type": "object",
        "required": [
            "token",
            "username",
            "password",
            "servers",
            "docker_login",
            "dockerconfigjson",
            "kubernetes_secret",
        ],
        "properties": {
            "token": _ref("Token"),
            "username": STR,
            "servers": {"type": "array", "items": STR},
            "docker_login": STR,
            # The next three are null, with `secret_withheld` saying why, in an Idempotency-Key replay.
            "password": {"type": ["string", "null"]},
            "dockerconfigjson": {"type": ["object", "null"], "required": ["auths"]},
            "kubernetes_secret": {
                "type": ["object", "null"],
                "required": ["apiVersion", "kind", "type", "metadata", "data"],
            },
            "secret_withheld": STR,
        },
    },
    "Member": {
        "type": "object",
        "required": ["subject", "role"],
        "properties": {"subject": STR, "role": STR, "created_at": TIME, "created_by": {"type": ["string", "null"]}},
    },
    "RetentionOverride": {
        "type": "object",
        "required": ["repositories"],
        "additionalProperties": False,
        "description": "Rules for the repositories matching `repositories` (the first matching override wins); "
        "fields left out are the registry's, null turns a rule off.",
        "properties": {
            "repositories": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "A glob of repository names: `*` matches `/` too.",
            },
            **RETENTION_RULES,
        },
    },
    "RetentionPolicyPut": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **RETENTION_RULES,
            "overrides": {"type": ["array", "null"], "maxItems": 100, "items": _ref("RetentionOverride")},
        },
    },
    "RetentionPolicy": {
        "type": "object",
        "required": [
            "keep_last",
            "keep_patterns",
            "expire_days",
            "delete_untagged",
            "overrides",
            "configured",
            "updated_at",
            "updated_by",
        ],
        "properties": {
            **RETENTION_RULES,
            "overrides": {"type": "array", "items": _ref("RetentionOverride")},
            "configured": {"type": "boolean"},
            "updated_at": {"type": ["string", "null"]},
            "updated_by": {"type": ["string", "null"]},
        },
    },
    "RetentionResult": {
        "type": "object",
        "required": [
            "registry",
            "dry_run",
            "evaluated_at",
            "policy",
            "repositories",
            "kept_tags",
            "tags",
            "manifests",
            "summary",
            "gc",
        ],
        "properties": {
            "registry": STR,
            "dry_run": {"type": "boolean"},
            "evaluated_at": TIME,
            "policy": {"type": "object"},
            "repositories": INT,
            "kept_tags": INT,
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["repository", "tag", "digest", "pushed_at", "reason"],
                    "properties": {"repository": STR, "tag": STR, "digest": STR, "pushed_at": TIME, "reason": STR},
                },
            },
            "manifests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "repository",
                        "digest",
                        "media_type",
                        "size",
                        "pushed_at",
                        "pulled_at",
                        "reason",
                        "by",
                    ],
                    "properties": {
                        "repository": STR,
                        "digest": STR,
                        "media_type": STR,
                        "size": INT,
                        "pushed_at": TIME,
                        "pulled_at": {"type": ["string", "null"]},
                        "reason": STR,
                        "by": {"type": "string", "enum": ["retention", "gc"]},
                    },
                },
            },
            "summary": {
                "type": "object",
                "required": ["tags", "manifests", "manifest_bytes"],
                "properties": {"tags": INT, "manifests": INT, "manifest_bytes": INT},
            },
            "gc": {
                "type": ["object", "null"],
                "description": "Apply: what the garbage collection that followed "
                "removed (null in a preview, or when it failed)",
            },
        },
    },
    "GcReport": {
        "type": "object",
        "required": [
            "registry",
            "dry_run",
            "manifests_deleted",
            "blobs_deleted",
            "bytes_freed",
            "orphan_files_deleted",
            "expired_uploads",
        ],
        "properties": {
            "registry": STR,
            "dry_run": {"type": "boolean"},
            "manifests_deleted": {"type": "array", "items": {"type": "object", "required": ["repository", "digest"]}},
            "blobs_deleted": {"type": "array", "items": {"type": "object", "required": ["digest", "size"]}},
            "bytes_freed": INT,
            "orphan_files_deleted": INT,
            "expired_uploads": INT,
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "time", "actor", "action", "outcome"],
        "properties": {
            "id": INT,
            "time": TIME,
            "actor": STR,
            "action": STR,
            "registry": {"type": ["string", "null"]},
            "repository": {"type": ["string", "null"]},
            "digest": {"type": ["string", "null"]},
            "tag": {"type": ["string", "null"]},
            "detail": {},
            "outcome": {"type": "string", "enum": ["success", "failure", "denied"]},
            "status": {"type": ["integer", "null"]},
            "client_ip": {"type": ["string", "null"]},
            "request_id": {"type": ["string", "null"]},
        },
    },
}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


ERRORS = {
    "400": _problem("Invalid request; `invalid_params` names the field."),
    "401": _problem("No or bad credentials (send `Authorization: Bearer <token>`)."),
    "403": _problem("Authenticated, but the caller's role does not allow this."),
    "404": _problem("Not found, or not visible to the caller (the two are indistinguishable)."),
    "405": _problem("Method not allowed."),
    "413": _problem("Body larger than BERTH_MAX_API_BODY_BYTES (or, where the route takes none, than 1 MiB)."),
    "429": _problem("Rate limited; see `Retry-After`."),
    "503": _problem("A dependency (the database, the DNS resolver) did not answer; see `Retry-After`."),
    "507": _problem("Storage is full (`STORAGE_FULL`); retry once space is freed."),
}


def _ok(status: str, description: str, schema: dict | None, extra: tuple[str, ...] = ()) -> dict:
    responses = {k: v for k, v in ERRORS.items()}
    for code in extra:
        responses[code] = _problem(
            {
                "409": "Conflict (a name is taken, an operation is in progress, "
                "or the organization's last owner would go).",
                "415": "Send JSON.",
                "413": "Body too large.",
                "422": "Idempotency key reused with a different request.",
                "503": "A dependency (the DNS resolver) did not answer; retry.",
            }[code]
        )
    responses[status] = (
        {"description": description}
        if schema is None
        else {"description": description, "content": {JSON: {"schema": schema}}}
    )
    return responses


def _page(name: str, item: str, **extra) -> dict:
    return {
        "type": "object",
        "required": [name, "next_cursor"],
        "properties": {name: {"type": "array", "items": _ref(item)}, "next_cursor": CURSOR, **extra},
    }


def _param(
    name: str, where: str = "path", schema: dict | None = None, description: str = "", required: bool | None = None
) -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path" if required is None else required,
        "schema": schema or STR,
        **({"description": description} if description else {}),
    }


ORG = _param("org", schema={"type": "string", "pattern": "^[a-z0-9-]{1,63}$"})
REGISTRY = _param("registry", schema={"type": "string", "pattern": "^[a-z0-9-]{1,63}$"})
REPOSITORY = _param("repository", description="The repository name; '/' may be sent as-is or as %2F.")
PAGING = [
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
    _param("cursor", "query", description="`next_cursor` of the previous page."),
]
IDEMPOTENCY = _param(
    "Idempotency-Key",
    "header",
    {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "Retrying a create with the same key and body returns the first answer.",
)


def _body(schema: str, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": _ref(schema)}}}


PATHS: dict = {
    "/api/v1/orgs": {
        "get": {
            "operationId": "listOrgs",
            "summary": "The organizations the caller belongs to",
            "responses": _ok(
                "200",
                "Organizations",
                {
                    "type": "object",
                    "required": ["orgs"],
                    "properties": {
                        "orgs": {"type": "array", "items": {"type": "object", "required": ["name", "role"]}}
                    },
                },
            ),
        }
    },
    "/api/v1/orgs/{org}/registries": {
        "parameters": [ORG],
        "get": {
            "operationId": "listRegistries",
            "parameters": PAGING,
            "responses": _ok("200", "Registries, by name", _page("registries", "Registry")),
        },
        "post": {
            "operationId": "createRegistry",
            "parameters": [IDEMPOTENCY],
            "requestBody": _body("RegistryCreate"),
            "responses": _ok(
                "202", "Accepted: provisioning; follow `operation`", _ref("Registry"), ("409", "415", "422")
            ),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}": {
        "parameters": [ORG, REGISTRY],
        "get": {"operationId": "getRegistry", "responses": _ok("200", "The registry", _ref("Registry"))},
        "patch": {
            "operationId": "updateRegistry",
            "requestBody": _body("RegistryPatch"),
            "responses": _ok(
                "200",
                "The changed registry (with `operation` when its footprint is re-provisioned)",
                _ref("Registry"),
                ("409", "415"),
            ),
        },
        "delete": {
            "operationId": "deleteRegistry",
            "responses": _ok(
                "202",
                "Accepted: marked deleting; follow `operation`",
                {"type": "object", "required": ["operation"], "properties": {"operation": _ref("Operation")}},
                ("409",),
            ),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/custom-domain/verify": {
        "parameters": [ORG, REGISTRY],
        "post": {
            "operationId": "verifyCustomDomain",
            "summary": "Check the custom domain's TXT record now; once it holds the challenge, route the domain",
            "responses": {
                **_ok("200", "Already verified", _ref("Registry"), ("409", "503")),
                "202": {
                    "description": "Verified: `operation` routes the domain",
                    "content": {JSON: {"schema": _ref("Registry")}},
                },
            },
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/repositories": {
        "parameters": [ORG, REGISTRY],
        "get": {
            "operationId": "browseRepositories",
            "parameters": [_param("path", "query", description="A folder such as `team/`")] + PAGING,
            "responses": _ok("200", "One level of the folder tree", _page("entries", "TreeEntry", path=STR)),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/repositories/{repository}": {
        "parameters": [ORG, REGISTRY, REPOSITORY],
        "get": {
            "operationId": "getRepository",
            "responses": _ok(
                "200",
                "The repository",
                {
                    "type": "object",
                    "required": ["name", "tags", "size", "stored_bytes", "blobs", "manifests"],
                    "properties": {
                        "name": STR,
                        "tags": INT,
                        "size": INT,
                        "stored_bytes": INT,
                        "blobs": INT,
                        "manifests": INT,
                        "last_push": {"type": ["string", "null"]},
                        "immutable_tags": {"type": "boolean"},
                    },
                },
            ),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/repositories/{repository}/tags": {
        "parameters": [ORG, REGISTRY, REPOSITORY],
        "get": {
            "operationId": "listTags",
            "parameters": PAGING,
            "responses": _ok("200", "Tags, by name", _page("tags", "Tag", repository=STR)),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/repositories/{repository}/manifests/{digest}": {
        "parameters": [ORG, REGISTRY, REPOSITORY, _param("digest")],
        "get": {
            "operationId": "getManifest",
            "responses": _ok("200", "Config, layers, platforms, referrers", _ref("ManifestDetail")),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/credentials": {
        "parameters": [ORG, REGISTRY],
        "post": {
            "operationId": "createCredentials",
            "parameters": [IDEMPOTENCY],
            "requestBody": _body("CredentialsCreate", required=False),
            "responses": _ok(
                "201", "A registry-scoped token, ready to use (shown once)", _ref("Credentials"), ("415", "422")
            ),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/usage": {
        "parameters": [ORG, REGISTRY],
        "get": {
            "operationId": "getRegistryUsage",
            "parameters": [
                _param(
                    "since",
                    "query",
                    {"type": "string", "format": "date"},
                    "First day (UTC), default 29 days before until",
                ),
                _param(
                    "until",
                    "query",
                    {"type": "string", "format": "date"},
                    "Last day (UTC), default today; at most 366 days",
                ),
                _param("repository", "query", description="Only this repository"),
            ],
            "responses": _ok(
                "200", "Stored bytes, quota, per-repository counts and daily traffic", _ref("RegistryUsage")
            ),
        },
    },
    "/api/v1/skus": {
        "get": {
            "operationId": "listSkus",
            "summary": "The storage SKU catalog",
            "responses": _ok(
                "200",
                "SKUs",
                {
                    "type": "object",
                    "required": ["skus", "default"],
                    "properties": {"skus": {"type": "array", "items": _ref("Sku")}, "default": STR},
                },
            ),
        }
    },
    "/api/v1/orgs/{org}/registries/{registry}/gc": {
        "parameters": [ORG, REGISTRY],
        "post": {
            "operationId": "collectGarbage",
            "summary": "Collect the registry's garbage now (the server's grace period)",
            "requestBody": {
                "required": False,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"dry_run": {"type": "boolean", "default": False}},
                        }
                    }
                },
            },
            "responses": _ok("200", "What was (or, in a dry run, would be) deleted", _ref("GcReport"), ("409", "415")),
        },
    },
    "/api/v1/orgs/{org}/audit": {
        "parameters": [ORG],
        "get": {
            "operationId": "listAudit",
            "parameters": [
                _param("actor", "query"),
                _param("action", "query", description="e.g. `registry` or `registry.create`"),
                _param("registry", "query"),
                _param("since", "query", TIME),
                _param("until", "query", TIME),
            ]
            + PAGING,
            "responses": _ok("200", "Audit events, newest first", _page("events", "AuditEvent")),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/retention": {
        "parameters": [ORG, REGISTRY],
        "get": {
            "operationId": "getRetention",
            "responses": _ok("200", "The retention policy (`configured: false`: none)", _ref("RetentionPolicy")),
        },
        "put": {
            "operationId": "putRetention",
            "requestBody": _body("RetentionPolicyPut"),
            "responses": _ok("200", "The policy, as stored", _ref("RetentionPolicy"), ("415",)),
        },
        "delete": {"operationId": "deleteRetention", "responses": _ok("204", "Removed (or there was none)", None)},
    },
    "/api/v1/orgs/{org}/registries/{registry}/retention/preview": {
        "parameters": [ORG, REGISTRY],
        "post": {
            "operationId": "previewRetention",
            "requestBody": {
                "required": False,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "policy": {
                                    "anyOf": [_ref("RetentionPolicyPut"), {"type": "null"}],
                                    "description": "Evaluate this policy instead of the stored one",
                                }
                            },
                        }
                    }
                },
            },
            "responses": _ok(
                "200",
                "Dry run: exactly the tags and manifests applying would delete, and why",
                _ref("RetentionResult"),
                ("409", "415"),
            ),
        },
    },
    "/api/v1/orgs/{org}/registries/{registry}/retention/apply": {
        "parameters": [ORG, REGISTRY],
        "post": {
            "operationId": "applyRetention",
            "responses": _ok(
                "200",
                "Deleted (each audited as retention.delete), then garbage collected",
                _ref("RetentionResult"),
                ("409",),
            ),
        },
    },
    "/api/v1/orgs/{org}/members": {
        "parameters": [ORG],
        "get": {
            "operationId": "listMembers",
            "parameters": PAGING,
            "responses": _ok("200", "Members, by subject", _page("members", "Member")),
        },
    },
    "/api/v1/orgs/{org}/members/{subject}": {
        "parameters": [ORG, _param("subject")],
        "get": {"operationId": "getMember", "responses": _ok("200", "A member", _ref("Member"))},
        "put": {
            "operationId": "putMember",
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["role"],
                            "properties": {
                                "role": {"type": "string", "enum": ["owner", "admin", "developer", "reader"]}
                            },
                        }
                    }
                },
            },
            "responses": {
                **_ok("200", "Changed", _ref("Member"), ("409", "415")),
                "201": {"description": "Added", "content": {JSON: {"schema": _ref("Member")}}},
            },
        },
        "delete": {"operationId": "removeMember", "responses": _ok("204", "Removed", None, ("409",))},
    },
    "/api/v1/orgs/{org}/tokens": {
        "parameters": [ORG],
        "get": {
            "operationId": "listTokens",
            "parameters": PAGING,
            "responses": _ok("200", "Tokens (never their secrets), by id", _page("tokens", "Token")),
        },
        "post": {
            "operationId": "createToken",
            "parameters": [IDEMPOTENCY],
            "requestBody": _body("TokenCreate"),
            "responses": _ok("201", "The token; `token` is the secret, shown once", _ref("Token"), ("415", "422")),
        },
    },
    "/api/v1/orgs/{org}/tokens/{token_id}": {
        "parameters": [ORG, _param("token_id", schema={"type": "integer", "minimum": 1})],
        "delete": {"operationId": "revokeToken", "responses": _ok("204", "Revoked", None, ("409",))},
    },
    "/api/v1/operations/{operation_id}": {
        "parameters": [_param("operation_id")],
        "get": {"operationId": "getOperation", "responses": _ok("200", "The operation", _ref("Operation"))},
    },
    "/api/v1/operations/{operation_id}/retry": {
        "parameters": [_param("operation_id")],
        "post": {"operationId": "retryOperation", "responses": _ok("202", "Queued again", _ref("Operation"), ("409",))},
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "security": [],
            "responses": {"200": {"description": "This document", "content": {JSON: {"schema": {"type": "object"}}}}},
        }
    },
    "/api/v1/openapi/distribution.json": {
        "get": {
            "operationId": "getDistributionOpenApi",
            "security": [],
            "responses": {
                "200": {
                    "description": "The data plane's (/v2) OpenAPI document",
                    "content": {JSON: {"schema": {"type": "object"}}},
                }
            },
        }
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Berth management API",
        "version": "1",
        "description": "Organizations, registries, browsing, credentials and audit. Errors are RFC 9457 "
        "problem JSON. Lists are cursor-paginated (`limit`, `cursor`, `next_cursor`, "
        '`Link: rel="next"`). Creates accept an `Idempotency-Key`.',
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An access token, or the identity provider's JWT",
            }
        },
    },
    "security": [{"bearer": []}],
}


class OpenApiResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {**DOCUMENT, "servers": [{"url": f"{req.scheme}://{req.netloc}"}]}
