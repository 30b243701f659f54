"""`Idempotency-Key` on management creates: a client that retries a create (a timeout, a
dropped connection) with the same key and body gets the first answer again, not a second
resource or a conflict. The same key with a different request is refused (422). Keys are kept
per caller for a day.

A resource opts in with `idempotent = ("POST",)`; this middleware runs after the gate, so the
caller is known and a replay never bypasses authorization.

Secrets are not kept for replays. A resource whose answer carries one (a new token, its
docker login password and the documents built from it) names those fields in
`secret_fields` and puts the secret in `req.context.secret`; the stored answer has those fields
null, says why in `secret_withheld`, and is replayed with `Secret-Withheld: true`. A retry thus
still never creates a second token, and the database (and its backups) never holds a usable
credential: the client that lost the first answer revokes that token and issues another. Should
the secret still appear in what would be stored (a field nobody named), nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
import re

import falcon

from app.services import idempotency
from app.spec.errors import RegistryError

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")
REPLAYED_HEADERS = ("Location", "Content-Type")
WITHHELD_HEADER = "Secret-Withheld"
WITHHELD_NOTE = (
    "this is a replay of the first answer to this request without its secret, which is shown only "
    "once and never stored: if it was lost, revoke this token and issue another"
)


class Idempotency:
    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if resource is None or req.method not in getattr(resource, "idempotent", ()):
            return
        key = req.get_header(HEADER)
        subject = getattr(req.context, "subject", None)
        if key is None or subject is None:
            return
        if not _KEY.fullmatch(key):
            raise RegistryError("INVALID", f"{HEADER} must be 1-255 printable ASCII characters", field=HEADER)
        fingerprint = _fingerprint(req)
        stored = idempotency.find(subject.name, key)
        if stored is None:
            req.context.idempotency = (key, fingerprint)
            return
        if (stored.method, stored.path, stored.fingerprint) != (req.method, req.path, fingerprint):
            raise RegistryError(
                "IDEMPOTENCY_KEY_REUSED",
                f"{HEADER} {key!r} was used for a different request; use a new key for a new request",
                field=HEADER,
            )
        resp.status = stored.status
        for name, value in stored.headers.items():
            resp.set_header(name, value)
        resp.set_header("Idempotent-Replayed", "true")
        resp.data = stored.body.encode()
        req.context.idempotent_replay = True
        resp.complete = True

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        pending = getattr(req.context, "idempotency", None)
        status = int(resp.status_code)
        if pending is None or not req_succeeded or not 200 <= status < 300:
            return
        key, fingerprint = pending
        body = resp.render_body() or b""
        headers = {name: value for name in REPLAYED_HEADERS if (value := resp.get_header(name))}
        secret_fields = getattr(resource, "secret_fields", ())
        if secret_fields:
            kept = _without_secrets(body, secret_fields, getattr(req.context, "secret", None))
            if kept is None:
                return  # the secret is somewhere it was not expected: better no replay than a stored secret
            body = kept
            headers[WITHHELD_HEADER] = "true"
        # Should the database refuse, the create happened all the same; only the replay of its answer is lost.
        idempotency.keep(
            req.context.subject.name,
            key,
            idempotency.Answer(req.method, req.path, fingerprint, status, headers, body.decode()),
        )


def _without_secrets(body: bytes, fields: tuple[str, ...], secret: str | None) -> bytes | None:
    """The answer to store for replays: `fields` null and a note saying so; None when the
    answer is not a JSON object or the secret is still in it."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for name in fields:
        if name in answer:
            answer[name] = None
    answer["secret_withheld"] = WITHHELD_NOTE
    stored = json.dumps(answer).encode()
    if not secret or secret.encode() in stored:
        return None
    return stored


def _fingerprint(req: falcon.Request) -> str:
    try:
        media = req.get_media(default_when_empty=None)
    except falcon.MediaMalformedError:
        media = "<malformed>"
    return hashlib.sha256(json.dumps(media, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
