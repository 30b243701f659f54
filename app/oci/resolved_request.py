"""What the router hands a data-plane responder: who is calling and, on a repository's routes,
what they address (the repository and its registry, already resolved and authorized) and the
route's argument."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.subject import Subject
from app.db.models import Registry
from app.oci.target import Target


@dataclass(frozen=True)
class ResolvedRequest:
    """A call on `/v2/` or the catalog: only who is calling."""

    subject: Subject


@dataclass(frozen=True)
class RepositoryRequest(ResolvedRequest):
    """A call on a repository's route: manifests, blobs, uploads, tags, referrers."""

    target: Target
    registry: Registry
    arg: str = ""  # the route's reference, digest or upload id
