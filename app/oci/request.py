"""What the router hands a data-plane responder: the resolved call."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.subject import Subject
from app.db.models import Registry
from app.oci.target import Target


@dataclass(frozen=True)
class Call:
    subject: Subject
    target: Target | None = None
    registry: Registry | None = None
    arg: str = ""  # the route's reference, digest or upload id
