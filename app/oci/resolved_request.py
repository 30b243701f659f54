"""What the router hands a data-plane responder: who is calling, what they address (the
repository and registry, already resolved and authorized), and the route's argument."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.subject import Subject
from app.db.models import Registry
from app.oci.target import Target


@dataclass(frozen=True)
class ResolvedRequest:
    subject: Subject
    target: Target | None = None
    registry: Registry | None = None
    arg: str = ""  # the route's reference, digest or upload id
