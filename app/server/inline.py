"""Short reads, and small manifest pushes, answered on waitress's event-loop thread.

waitress parses every request on one event-loop thread and hands it to a request thread, which
runs the application, writes the response and wakes the loop again through a pipe: a condition
variable, a thread switch and a GIL hand-off each way. For a manifest GET that the application
answers in ~150 us, that hand-off was about a third of the CPU a request cost (~460 us per
request under load, ~340 us without it; scripts/bench). Pulls are mostly such requests.

So the requests that only read a little from the database, manifest GET/HEAD and blob HEAD
(a blob GET streams and stays on the request threads), run where they were parsed. That is only
right when nothing they do can wait long, because the loop serves every connection of the
process: `inline_reads = auto` turns it on only when the database is SQLite (no network round
trip, no pool to wait for) or a PostgreSQL server on this machine (below), counters are in
memory (no Redis) and no identity provider is configured (whose key fetches go over the
network). A pipelined request behind an inline one goes to the request threads as before.

PostgreSQL on this machine (a loopback address or a Unix socket): a round trip there is tens of
microseconds, and on request threads each one also hands the GIL back and forth (measured, a
manifest GET on 127.0.0.1, two processes: ~1.09 ms of CPU per request on request threads,
~0.70 ms here; scripts/bench). The loop keeps one connection of the pool for itself, set once to
have the server cancel any statement that runs past LOOP_PATIENCE (a lock wait included): a
request that would wait longer is answered 503 (retry), as on SQLite. A server elsewhere is
not waited for on the loop: a few round trips of a network's latency per request would cap
what one process serves, so there `auto` keeps every request on the request threads
(`BERTH_INLINE_READS=on` overrides it, for a server a short hop away).

"In memory" includes the table of counters that `--workers` processes share (app/counters/
windows.py): a request's rate limit is a few microseconds there, under a lock held only while
one slot is read and written (a POSIX record lock, which the kernel releases if its holder
dies), so nothing on the loop waits on another process for longer than that.

What these requests may write: pull counts are counted in memory (app/services/metering.py) and
pull times noted for a background thread (app/services/retention.py), so a pull never waits for
SQLite's write lock on the loop. A blob HEAD refreshes the blob's `touched_at` itself, at most
once a minute per blob (garbage collection relies on it being written before the answer), which
waits for the write lock if another process holds it: write transactions are short (a blob's
publication, a tag, one repository's retention).

Small manifest pushes (a manifest PUT of at most SMALL_PUT bytes, its body already received
whole) run here too, on SQLite (`pushes_inline`): a push is one short SQLite write transaction
(app/services/manifests.py), and the hand-off to a request thread and back, with the GIL passed
between the loop and the request threads, was more than half of a push's CPU (measured, one
process, 8 keep-alive clients pushing new manifests, alternating: ~2.8-3.4 ms of CPU per push
on request threads, ~1.2-1.4 ms here, at twice the rate). What a push waits for on the loop is
bounded: the thread runs its requests with a LOOP_PATIENCE of 2 s (app/db/setup.py's
`patience`), so a write turn or SQLite's lock held longer by another writer (another process's
long transaction, a VACUUM) gets the push a 503 (retry) after 2 s instead of stalling the
process's connections for SQLite's usual 30 s; the refusal's own audit record waits as long
again at most.

Small blob uploads run here too, on SQLite with the filesystem store (`uploads_inline`): a
POST that starts an upload session, or mounts a blob, or uploads a whole blob of at most
INLINE_MOST bytes in its body, and a PATCH or PUT on an upload session when both its body and
the bytes the session holds so far are that small (the session's size is looked up here, before
the request is authorized, and used for nothing else: app/services/uploads.py's
`size_for_inline`). Every image has such blobs (its config, small layers); CI systems push many
images. On request threads a small upload's requests cost ~4 ms of CPU each, most of it
handing the GIL between threads at each of its file and database calls (~65 context switches a
request); here, about half (measured, one process, 8 clients doing the bench's populate step, a
new repository with two small blobs and a manifest each: 19 -> 12 ms of CPU per repository). What it
waits for here is bounded as for a push: the write turn and SQLite's lock by LOOP_PATIENCE. The
session's own locks are not waited for at all: another request on the session holds them as
long as its chunk takes to append, and a client could send large chunks back to back while
aiming small requests at the loop. A session a request of this process is working on is not
taken here (`size_for_inline` says so), and one busy in another process, or grown past
INLINE_MOST since the look, is answered 503 (retry) at once; the retry of the latter runs on a
request thread. Its fsync is of those few bytes. Not with a cloud store, whose writes cross the
network.

It also means a manifest request is answered while every request thread is busy (say, hashing
and syncing large pushed layers).

This leans on waitress internals (create_server's `_dispatcher`, a channel's `requests` and
`service()`), so pyproject.toml pins waitress exactly, tests/unit/server/test_waitress_seam.py
checks they are there, and tests/integration/test_inline_reads.py checks the behaviour,
pipelining included.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

from waitress.task import ThreadedTaskDispatcher

from app.config import Settings
from app.db import setup
from app.server.plain_http import PlainHTTPChannel
from app.services.uploads import INLINE_MOST

_UPLOAD = re.compile(r"^/v2/.+/blobs/uploads/(?P<id>[^/]*)\Z", re.DOTALL)
_INLINE = re.compile(r"^/v2/.+/(?:manifests/[^/]+|blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)\Z", re.DOTALL)


def enabled(settings: Settings) -> bool:
    mode = settings.inline_reads.strip().lower()
    if mode in ("on", "true", "1"):
        return True
    if mode in ("off", "false", "0"):
        return False
    if mode != "auto":
        raise SystemExit(f"BERTH_INLINE_READS must be auto, on or off, not {settings.inline_reads!r}")
    if settings.redis_url or settings.oidc_jwks_url:
        return False
    return settings.database_url.startswith("sqlite") or _is_local_postgres(settings.database_url)


def _is_local_postgres(url: str) -> bool:
    """A PostgreSQL URL whose server is on this machine: a loopback address or a Unix socket
    (no host, or a host that is a directory), where a round trip is tens of microseconds. Not
    with `server_prepare=off`, the setting for a pooler in transaction mode (PgBouncer, often a
    sidecar on the loopback): the server is then elsewhere, and a session's settings (the loop's
    statement timeout) would pass to other clients with the pooler's connections."""
    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        return False
    query = parse_qs(parsed.query)
    if query.get("server_prepare", ["on"])[0].lower() in ("off", "false", "0"):
        return False
    host = query.get("host", [""])[0] or parsed.hostname or ""  # the query's wins
    if not host or host.startswith("/"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A manifest PUT whose body (already received whole) is at most this runs inline too.
SMALL_PUT = 64 * 1024
# How long a request run on the loop thread waits for SQLite's write lock (this machine's writer
# turnstile, then SQLite's own busy wait) before it is answered 503 (retry): the loop serves
# every connection of the process, so it never waits the 30 s a request thread would.
LOOP_PATIENCE = 2.0


def pushes_inline(settings: Settings) -> bool:
    """Whether small manifest pushes run inline too: on SQLite only. A commit there waits for no
    disk (WAL, synchronous=normal); PostgreSQL's waits for its WAL to be flushed, which on the
    loop would hold up every connection of the process, once per push (measured: the same rate
    or lower, at a much worse p99), where request threads share one flush between commits."""
    return settings.database_url.startswith("sqlite")


def uploads_inline(settings: Settings) -> bool:
    """Whether small blob uploads run inline too: as pushes, and only with the filesystem store
    (a cloud store's writes cross the network)."""
    return pushes_inline(settings) and settings.storage_url.startswith("file:")


UploadSize = Callable[[str], "int | None"]  # an upload id -> the bytes it holds (None: unknown)


def is_inline(request, pushes: bool = True, upload_size: UploadSize | None = None) -> bool:
    """Manifest GET or HEAD, or blob HEAD, without a body; or (with `pushes`) a manifest PUT of
    at most SMALL_PUT bytes; or (with `upload_size`) a small upload's request: a POST, PATCH or
    PUT under /blobs/uploads/ with a body of at most INLINE_MOST bytes, on a session holding at
    most that many. A request waitress could not parse (a malformed request line: no `command`,
    an `error` set) is not one: waitress answers it."""
    command = getattr(request, "command", None)
    if getattr(request, "error", None) is not None:
        return False
    path = getattr(request, "path", "") or ""
    if upload_size is not None and command in ("POST", "PATCH", "PUT") and (m := _UPLOAD.fullmatch(path)):
        if getattr(request, "chunked", False) or (request.content_length or 0) > INLINE_MOST:
            return False
        if command == "POST":
            return m["id"] == ""
        if not m["id"]:
            return False
        held = upload_size(m["id"])
        return held is not None and held <= INLINE_MOST
    if command == "PUT":
        if not pushes:
            return False
        length = request.content_length or 0
        return 0 < length <= SMALL_PUT and "/manifests/" in path and _INLINE.fullmatch(path) is not None
    if command not in ("GET", "HEAD") or request.content_length:
        return False
    m = _INLINE.fullmatch(path)
    return m is not None and (command == "HEAD" or "/manifests/" in path)


class InlineChannel(PlainHTTPChannel):
    """Runs a short read that arrives on an idle connection right here, on the loop thread."""

    _in_received = False
    _inline_pending = False

    def received(self, data: bytes) -> bool:
        self._in_received = True
        try:
            result = super().received(data)
        finally:
            self._in_received = False
        # service() takes the channel's request lock that received() held: run it after.
        while self._inline_pending:
            self._inline_pending = False
            with setup.patience(LOOP_PATIENCE):
                self.service()
        return result


class InlineDispatcher(ThreadedTaskDispatcher):
    """waitress's thread pool, except for short reads a channel is receiving: those are left
    for the channel to run (InlineChannel.received) instead of being queued."""

    def __init__(self, pushes: bool = True, upload_size: UploadSize | None = None) -> None:
        super().__init__()
        self.pushes = pushes  # small manifest pushes too (pushes_inline)
        self.upload_size = upload_size  # small uploads too (uploads_inline)

    def add_task(self, task) -> None:
        if (
            getattr(task, "_in_received", False)
            and len(task.requests) == 1
            and is_inline(task.requests[0], self.pushes, self.upload_size)
        ):
            task._inline_pending = True
            return
        super().add_task(task)
