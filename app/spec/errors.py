"""The registry's error vocabulary: OCI distribution-spec error codes, and ours, in one table.

Domain services raise `RegistryError`; the data plane renders it as the OCI error envelope,
the management plane as problem JSON. One class, two renderings.
"""

from __future__ import annotations

# code -> (HTTP status, default message), from the distribution spec's error code table.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (404, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (415, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    # Not in the spec's table, used by Distribution for bad ranges and method mismatches.
    "RANGE_INVALID": (416, "requested range not satisfiable"),
    "METHOD_UNKNOWN": (405, "the method is not supported for this resource"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "PAYLOAD_TOO_LARGE": (413, "request body too large"),
    # The disk under the blob store, the spool or the database is full (app/storage/capacity.py).
    "STORAGE_FULL": (507, "the registry's storage is full; nothing of this request was kept, retry later"),
    # A dependency (the database, the blob store) failed and kept failing through retries: the
    # message of each raise says which; the default names none, so the title never misleads.
    "UNAVAILABLE": (503, "the registry is temporarily unavailable; retry later"),
    # Management-plane codes.
    "CONFLICT": (409, "the resource already exists"),
    "NOT_FOUND": (404, "not found"),
    "INVALID": (400, "invalid request"),
    "IDEMPOTENCY_KEY_REUSED": (422, "the idempotency key was used with a different request"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """An error with an OCI-style code, an HTTP status and a human message."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        detail: object = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        challenge_error: str | None = None,
        field: str | None = None,
    ) -> None:
        default_status, default_message = CODES[code]
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers = headers or {}
        # For 401s: the `error` of the Bearer challenge (e.g. insufficient_scope).
        self.challenge_error = challenge_error
        # Management plane: the request field a validation error is about.
        self.field = field
        super().__init__(f"{code}: {self.message}")

    def envelope(self) -> dict:
        """The OCI error envelope: {"errors": [{"code", "message", "detail"}]}."""
        error: dict = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}
