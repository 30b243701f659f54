"""`/v2/<name>/blobs/<digest>`: GET (with Range), HEAD, DELETE."""

from __future__ import annotations

import re

import falcon

from app.auth import roles
from app.edge.file_body import FileBody
from app.oci.resolved_request import RepositoryRequest
from app.services import repositories
from app.services.blobs import BlobService
from app.services.metering import Meter
from app.spec import digests
from app.spec.errors import RegistryError
from app.spec.media_types import OCTET_STREAM

# ASCII digits only: `\d` takes other scripts' digits too.
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")
_HUGE = 2**63  # past any blob's size; a position longer than 19 digits reads as this


def parse_range(header: str, size: int) -> tuple[int, int]:
    """(first, last) byte of a single `bytes=` range; RANGE_INVALID when unsatisfiable."""
    m = _RANGE.fullmatch(header.strip())
    unsatisfiable = RegistryError(
        "RANGE_INVALID",
        f"range {header[:100]!r} cannot be served from {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )
    if m is None or m.group(1) == m.group(2) == "":
        raise unsatisfiable
    first, last = m.groups()
    if first == "":  # suffix: the last N bytes
        n = _position(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(size - n, 0), size - 1
    start = _position(first)
    end = size - 1 if last == "" else min(_position(last), size - 1)
    if start >= size or (last != "" and _position(last) < start):
        raise unsatisfiable
    return start, end


def _position(digits: str) -> int:
    """A byte position as sent: RFC 9110 puts no bound on its length, but int() refuses strings
    past 4300 digits, and every position past 19 digits is beyond the blob anyway."""
    return int(digits) if len(digits) <= 19 else _HUGE


def _stored_digest(reference: str) -> str:
    """The digest a blob would be stored under. spec.md lists only 404 for `GET`/`HEAD` of
    `/blobs/<digest>` (and 404/400/405 for `DELETE`, the 400 and 405 for disabled deletion):
    a reference that is no digest taken here names no blob, so the blob is not found."""
    digest = digests.canonical(reference)
    if digest is None:
        raise _unknown(reference)
    return digest


def _unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", f"blob {digest[:200]!r} not found", detail={"digest": digest[:200]})


class BlobResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL, "DELETE": roles.DELETE}

    def __init__(self, blobs: BlobService, meter: Meter) -> None:
        self.blobs = blobs
        self.meter = meter

    def _blob(self, resolved: RepositoryRequest):
        digest = _stored_digest(resolved.arg)
        found = self.blobs.find_in(resolved.registry, resolved.target.repository, digest)
        if found is not None:
            return found
        raise _unknown(digest)

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        repository, blob = self._blob(resolved)
        if req.method == "GET":
            location = self.blobs.redirect_url(repository, blob)
            if location:
                # The bytes come from the store itself (a short-lived signed URL); a Range
                # header is re-sent there by the client. HEAD is still answered here.
                resp.status = falcon.HTTP_307
                resp.location = location
                resp.set_header("Docker-Content-Digest", blob.digest)
                resp.set_header("Cache-Control", "no-store")
                resp.content_length = 0
                self.meter.count(resolved.registry.id, repository.name, pull_bytes=blob.size)
                return
        resp.content_type = OCTET_STREAM
        resp.set_header("Docker-Content-Digest", blob.digest)
        resp.set_header("Accept-Ranges", "bytes")
        resp.set_header("ETag", f'"{blob.digest}"')
        resp.set_header("Cache-Control", "max-age=31536000")
        start, length = 0, blob.size
        range_header = req.get_header("Range")
        if range_header:
            start, end = parse_range(range_header, blob.size)
            length = end - start + 1
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", f"bytes {start}-{end}/{blob.size}")
        if req.method == "HEAD":
            resp.content_length = length
            return
        f = self.blobs.open(repository, blob)
        if start:
            f.seek(start)
        resp.stream, resp.content_length = FileBody(f, length), length
        self.meter.count(resolved.registry.id, repository.name, pull_bytes=length)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        digest = _stored_digest(resolved.arg)
        repository = repositories.get(resolved.registry, resolved.target.repository)
        self.blobs.unlink(repository, digest)
        resp.status = falcon.HTTP_202
        resp.content_length = 0
