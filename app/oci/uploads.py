"""`/v2/<name>/blobs/uploads/[<id>]`: start (POST, with mount or monolithic digest), chunk
(PATCH), status (GET), finish (PUT), cancel (DELETE)."""

from __future__ import annotations

from typing import BinaryIO, cast

import falcon

from app.auth import roles
from app.auth.gate import is_allowed, may_pull_every_repository
from app.edge.spooled_body import spooled_file
from app.oci.resolved_request import RepositoryRequest
from app.oci.target import same_registry_repository
from app.services import quotas, repositories
from app.services.blobs import BlobService
from app.services.metering import Meter
from app.services.uploads import UploadService, range_headers
from app.spec import content_range, digests
from app.spec.errors import RegistryError
from app.storage.capacity import is_storage_full


def _chunk_start(req: falcon.Request, offset: int, headers: dict[str, str]) -> int | None:
    """Where the request's chunk starts by its Content-Range; None without one. Every method that
    carries a chunk (POST, PATCH, the closing PUT) is held to the same rule, spec.md: "Chunks MUST
    be uploaded in order ... If a chunk is uploaded out of order, the registry MUST respond with a
    `416`". So RANGE_INVALID, before a byte is stored, when the range is malformed, disagrees with
    the body's length, or does not start at `offset`: the upload's committed bytes as read here
    (the upload service checks again under the upload's claim), which `headers` report."""
    header = req.get_header("Content-Range")
    if not header:
        return None
    parsed = content_range.parse(header)
    if parsed is None:
        raise RegistryError("RANGE_INVALID", f"malformed Content-Range {header[:100]!r}", headers=headers)
    start, end = parsed
    length = req.content_length
    if end < start or (length is not None and end - start + 1 != length):
        raise RegistryError(
            "RANGE_INVALID", f"Content-Range {header[:100]!r} does not match Content-Length {length}", headers=headers
        )
    if start != offset:
        raise RegistryError(
            "RANGE_INVALID", f"chunk starts at {start} but the upload has {offset} bytes", headers=headers
        )
    return start


def _body(req: falcon.Request) -> BinaryIO:
    """The request body as the upload service reads it: falcon's BoundedStream reads like a binary
    file (read(size) -> bytes) without being typed as one."""
    return cast(BinaryIO, req.bounded_stream)


def _created(resp: falcon.Response, resolved: RepositoryRequest, digest: str) -> None:
    resp.status = falcon.HTTP_201
    resp.location = resolved.target.url(f"blobs/{digest}")
    resp.set_header("Docker-Content-Digest", digest)
    resp.content_length = 0


def _in_progress(resp: falcon.Response, resolved: RepositoryRequest, upload_id: str, offset: int, status) -> None:
    resp.status = status
    resp.location = resolved.target.url(f"blobs/uploads/{upload_id}")
    resp.set_header("Docker-Upload-UUID", upload_id)
    for name, value in range_headers(offset).items():
        resp.set_header(name, value)
    resp.content_length = 0


class UploadsResource:
    """POST /v2/<name>/blobs/uploads/"""

    actions = {"POST": roles.PUSH}

    def __init__(self, uploads: UploadService, blobs: BlobService, meter: Meter, max_sessions: int = 0) -> None:
        self.uploads = uploads
        self.blobs = blobs
        self.meter = meter
        self.max_sessions = max_sessions  # open sessions per registry (0: no cap)

    def on_post(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        mount, source_name, digest = req.get_param("mount"), req.get_param("from"), req.get_param("digest")
        if mount is not None:
            mount = str(digests.parse(mount))
        if digest is not None:
            digest = str(digests.parse(digest))
        monolithic = digest is not None and mount is None
        # The body of a POST is the first chunk of the upload it starts (no upload yet: no Range).
        _chunk_start(req, 0, {})
        if monolithic:
            quotas.check_push(resolved.registry, req.content_length, digest)  # before a byte or a row is stored
        name = resolved.target.repository

        if mount is not None:
            source = self._mount_source(resolved, source_name)
            if source is not None or (
                not source_name and may_pull_every_repository(resolved.subject, resolved.registry)
            ):
                blob = repositories.pushing(
                    resolved.registry, name, lambda target: self.blobs.mount(target, mount, source)
                )
                if blob is not None:
                    return _created(resp, resolved, mount)
            # Nothing to mount: fall back to an ordinary upload session, as the spec says.

        if not monolithic:  # a session left open (a monolithic one ends with this request)
            quotas.check_new_session(resolved.registry, self.max_sessions)
        # The session's repository row stays unseen until a blob or manifest is committed to it,
        # and goes with the session if none is (app/services/repositories.py).
        repository, upload = repositories.pushing(
            resolved.registry, name, lambda found: (found, self.uploads.start(found))
        )
        if digest is not None and monolithic:
            try:
                blob = self.uploads.finish(
                    repository,
                    upload,
                    digest,
                    _body(req),
                    req.content_length,
                    spooled_file(_body(req), req.content_length),
                )
            except Exception as e:
                if is_storage_full(e):  # no one has this session's id to resume it: give its space back
                    self.uploads.abandon(upload)
                raise
            self.meter.count(resolved.registry.id, repository.name, push_bytes=blob.size)
            return _created(resp, resolved, blob.digest)
        _in_progress(resp, resolved, upload.id, 0, falcon.HTTP_202)

    @staticmethod
    def _mount_source(resolved: RepositoryRequest, source_name: str | None):
        """The `from=` repository, when it is in this registry, exists, and the caller may pull
        from it (a registry token is scoped per repository); else None, and no mount."""
        if not source_name:
            return None
        source_repo = same_registry_repository(resolved.target, source_name)
        if source_repo is None or not is_allowed(resolved.subject, roles.PULL, resolved.registry, source_repo):
            return None
        return repositories.find(resolved.registry, source_repo)


class UploadResource:
    """/v2/<name>/blobs/uploads/<id>"""

    actions = {"GET": roles.PUSH, "PATCH": roles.PUSH, "PUT": roles.PUSH, "DELETE": roles.PUSH}

    def __init__(self, uploads: UploadService, meter: Meter) -> None:
        self.uploads = uploads
        self.meter = meter

    def _session(self, resolved: RepositoryRequest):
        repository = repositories.find(resolved.registry, resolved.target.repository)
        if repository is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {resolved.arg[:64]!r} not found")
        return repository, self.uploads.get(repository, resolved.arg)

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        _, upload = self._session(resolved)
        _in_progress(resp, resolved, upload.id, upload.offset, falcon.HTTP_204)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        _, upload = self._session(resolved)
        start = _chunk_start(req, upload.offset, range_headers(upload.offset))
        if req.content_length:  # this chunk, before it is written (the upload's bytes so far count as held)
            quotas.check_push(resolved.registry, req.content_length)
        offset = self.uploads.append(
            upload, _body(req), req.content_length, start, spooled_file(_body(req), req.content_length)
        )
        _in_progress(resp, resolved, upload.id, offset, falcon.HTTP_202)

    def on_put(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        digest = req.get_param("digest")
        if not digest:
            raise RegistryError("DIGEST_INVALID", "the closing PUT needs ?digest=<digest>")
        repository, upload = self._session(resolved)
        start = _chunk_start(req, upload.offset, range_headers(upload.offset))
        try:  # the last bytes, before they are written and the blob is committed (a malformed
            # digest is refused by finish() below)
            quotas.check_push(resolved.registry, req.content_length, digests.canonical(digest))
        except RegistryError as refused:
            if refused.code == "DENIED":
                self.uploads.cancel(upload)  # its bytes can never become a blob here
            raise
        blob = self.uploads.finish(
            repository,
            upload,
            digest,
            _body(req),
            req.content_length,
            spooled_file(_body(req), req.content_length),
            start,
        )
        self.meter.count(resolved.registry.id, repository.name, push_bytes=blob.size)
        _created(resp, resolved, blob.digest)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        _, upload = self._session(resolved)
        self.uploads.cancel(upload)
        resp.status = falcon.HTTP_204
