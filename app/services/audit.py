"""The audit trail: who did what, where, from where, when, and how it ended.

Records are written by one middleware (app.api.audit.AuditTrail) for every management action
and every data-plane push, tag move and delete; they name registries and repositories rather
than link to them, so they survive deletion.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import peewee as pw

from app.db.models import AuditEvent, utcnow
from app.db.prepared import Prepared
from app.db.setup import DatabaseUnavailable
from app.services import paging
from app.spec.errors import RegistryError

log = logging.getLogger("berth.audit")


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    return "success" if status < 400 else "failure"


def record(**fields) -> None:
    """`write` after the action (its own statement): a failure to write the record is logged,
    not raised, since the action has happened (or failed) already."""
    try:
        write(**fields)
    except pw.PeeweeException:
        # The action itself has happened (or failed) already; losing its record must be loud.
        log.exception("could not write the audit record for %s by %s", fields.get("action"), fields.get("actor"))


_INSERT = Prepared(
    lambda org, time, actor, action, registry, repository, digest, tag, detail, outcome, status, client_ip, request: (
        AuditEvent.insert(
            org=org, time=time, actor=actor, action=action, registry=registry, repository=repository, digest=digest,
            tag=tag, detail=detail, outcome=outcome, status=status, client_ip=client_ip, request_id=request,
        )
    ),
    "isssssssssiss",
)  # fmt: skip


def write_within(**fields) -> None:
    """`write`, inside the action's own transaction: a record the database refuses becomes
    UNAVAILABLE (503, retry), which undoes the action with it."""
    try:
        write(**fields)
    except DatabaseUnavailable:
        raise
    except pw.PeeweeException:
        log.exception(
            "could not write the audit record for %s by %s; the action is undone",
            fields.get("action"),
            fields.get("actor"),
        )
        raise RegistryError(
            "UNAVAILABLE",
            "the action could not be recorded in the audit trail, so it was not done; retry",
            status=503,
            headers={"Retry-After": "1"},
        ) from None


def write(
    *,
    org_id: int,
    actor: str,
    action: str,
    status: int,
    registry: str | None = None,
    repository: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    detail: dict | None = None,
    client_ip: str | None = None,
    request_id: str | None = None,
) -> None:
    """Write an audit record, raising what the database raises: inside the action's own
    transaction (a manifest push), the record and the action commit together or not at all."""
    _INSERT.cursor(
        org_id, utcnow(), actor[:255], action, registry, repository, digest, tag,
        json.dumps(detail, sort_keys=True) if detail else None, outcome_of(status), status, client_ip, request_id,
    )  # fmt: skip


def page_of_events(
    org_id: int,
    page: paging.Page,
    *,
    actor: str | None = None,
    action: str | None = None,
    registry: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> paging.Rows:
    """The organization's events matching the filters, newest first."""
    query = _query(org_id, actor=actor, action=action, registry=registry, since=since, until=until)
    return paging.keyset(query, AuditEvent.id, page, descending=True)


def _query(
    org_id: int,
    *,
    actor: str | None = None,
    action: str | None = None,
    registry: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> pw.ModelSelect:
    q = AuditEvent.select().where(AuditEvent.org == org_id)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        # "registry" matches every registry.* action; "registry.create" just that one.
        q = q.where((AuditEvent.action == action) | AuditEvent.action.startswith(action + "."))
    if registry:
        q = q.where(AuditEvent.registry == registry)
    if since:
        q = q.where(AuditEvent.time >= since)
    if until:
        q = q.where(AuditEvent.time < until)
    return q


_TIME_CHARACTERS = re.compile(r"[0-9T:.+\-Z ]{1,40}")


def parse_time(value: str | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if not _TIME_CHARACTERS.fullmatch(value):  # fromisoformat lets a newline or other scripts' digits by
            raise ValueError(value)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:  # OverflowError: a day-1 or year-9999 time whose UTC is off the calendar
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise RegistryError(
            "INVALID", f"{field} must be an ISO 8601 time such as 2026-11-29T12:00:00Z", field=field
        ) from None
    return parsed
