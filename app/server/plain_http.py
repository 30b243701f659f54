"""The HTTP server layer: waitress's channels and parser as Berth runs them.

- A TLS handshake on the plain-HTTP port is refused at once. Clients try HTTPS first even for
  an insecure registry, and fall back to HTTP only when that fails; waitress would wait for HTTP
  headers that never come, so every client stalled for its TLS handshake timeout (10 s) on each
  connection. A TLS record starts with byte 0x16, which no HTTP request does: answer it with a
  400 and close, as Go's HTTP server and Distribution do.
- Connections are bounded, so idle and slow clients cannot lock others out (waitress's own
  limits, 100 connections and a 300 s idle timeout, let 100 idle sockets do that): a request's
  line and headers must arrive within `BERTH_HEADER_TIMEOUT` seconds, an idle keep-alive
  connection is closed after `BERTH_KEEPALIVE_TIMEOUT`, and past `BERTH_MAX_CONNECTIONS` the
  longest-idle connection that is waiting for a request makes room for the new one. The event
  loop polls (select() stops at file descriptor 1024).
- A large request body is read only once the request's headers are authorized: when they are in
  and more than PREFLIGHT_ABOVE bytes (or a chunked body) follow, the connection stops reading and
  a request thread runs the application on the headers alone (app/edge/preflight.py). Let
  through, the body is read as before; refused, the refusal is sent at once and the connection
  closed without reading the body, so an anonymous 300 MiB POST costs at most one socket read.
"""

from __future__ import annotations

import io
import logging
import resource
import socket
import time
from dataclasses import dataclass
from email.utils import formatdate

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask
from waitress.utilities import RequestEntityTooLarge

from app.config import Settings
from app.edge import preflight
from app.server import spool

log = logging.getLogger("berth.connections")

TLS_HANDSHAKE = 0x16
REFUSAL = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    b"Client sent a TLS handshake to a plain-HTTP port: use http://, or TLS at the gateway.\n"
)
PREFLIGHT_ABOVE = preflight.SMALL_BODY  # bodies up to this are read (into memory) before authorization
LINGER = 5.0  # seconds a refused request's unread body is read and dropped, so the refusal arrives
BODY_STALL = 300  # seconds without a byte before a connection receiving a body is closed (waitress's)
FD_RESERVE = 256  # open files kept for the database, spool and blob files, logs, beside connections
FD_PER_THREAD = 8


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    keepalive_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        """The settings' limits, with the connection ceiling fitted to the open-file limit (whose
        soft value is raised to the hard one first)."""
        available = raise_open_file_limit() - FD_RESERVE - FD_PER_THREAD * settings.threads
        ceiling = settings.max_connections
        if ceiling > available:
            ceiling = max(available, 16)
            log.warning(
                "BERTH_MAX_CONNECTIONS=%d does not fit the open-file limit (ulimit -n); holding at most %d connections",
                settings.max_connections,
                ceiling,
            )
        return cls(settings.header_timeout, settings.keepalive_timeout, ceiling)


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (each connection holds
    one); the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    except (ValueError, OSError):
        return soft


def server_options() -> dict:
    """waitress.create_server adjustments for these limits (install() completes them)."""
    return {
        "channel_timeout": BODY_STALL,
        "cleanup_interval": 1,  # how often the timeouts are checked (the loop wakes every second)
        "asyncore_use_poll": True,
    }


def install(server, channel_class: type[PlainHTTPChannel], limits: ConnectionLimits) -> None:
    """Serve `server`'s connections with `channel_class` under `limits`."""
    socket_map = getattr(server, "map", None) or server._map  # a MultiSocketServer, or one server
    listeners = [d for d in socket_map.values() if isinstance(d, BaseWSGIServer)]
    others = sum(1 for d in socket_map.values() if not isinstance(d, HTTPChannel))
    # waitress stops accepting at this many sockets: the ceiling, plus one connection admitted
    # while every other one has a request in progress (none can make room for it).
    listeners[0].adj.connection_limit = others + limits.max_connections + 1
    for listener in listeners:
        listener.channel_class = channel_class
        listener.berth_limits = limits
        listener.maintenance = _Maintenance(listener)


class _Maintenance:
    """Replaces a server's `maintenance(now)`, which waitress calls from its loop every
    `cleanup_interval`: closes connections past their header, keep-alive or linger deadline,
    then does waitress's own (a body with no byte for BODY_STALL)."""

    def __init__(self, server) -> None:
        self.server = server

    def __call__(self, now: float) -> None:
        limits = self.server.berth_limits
        for channel in list(self.server.active_channels.values()):
            if isinstance(channel, PlainHTTPChannel) and channel.expired(now, limits):
                channel.will_close = True
        type(self.server).maintenance(self.server, now)


class HeadersFirstParser(HTTPRequestParser):
    """waitress's parser, except that when a request's headers are complete and a large body
    follows, it reports the request complete without its body, as a `preflight`: the body's
    first bytes (what this read brought) are `held` until the application has decided."""

    preflight = False
    preflighted = False
    held = b""
    completed: bool  # waitress's own attributes this class sets
    expect_continue: bool
    body_limit: int | None = None  # set by a preflight that let a chunked body of unknown size in
    _expect_continue = False

    def received(self, data) -> int:
        if self.headers_finished or self.completed:
            if (
                self.body_limit is not None
                and not self.completed
                and self.body_bytes_received + len(data) > self.body_limit
            ):
                self.error = RequestEntityTooLarge(f"exceeds {self.body_limit} bytes")
                self.completed = True
                return len(data)
            return super().received(data)
        consumed = super().received(data)
        if (
            self.headers_finished
            and not self.completed
            and self.body_rcv is not None
            and (self.chunked or self.content_length > PREFLIGHT_ABOVE)
        ):
            self.preflight, self.completed = True, True
            self.held = bytes(data[consumed:])
            # No "100 Continue" before the decision: a refused client never sends the body.
            self._expect_continue, self.expect_continue = self.expect_continue, False
            return len(data)
        return consumed

    def resume(self, body_limit: int | None) -> bytes:
        """Back to receiving the body, after the preflight passed; the bytes held meanwhile."""
        self.preflight, self.completed, self.preflighted = False, False, True
        self.body_limit = body_limit
        self.expect_continue = self._expect_continue
        held, self.held = self.held, b""
        return held


class _Task(WSGITask):
    def get_environment(self) -> dict:
        environ = super().get_environment()
        if self.request.preflighted:
            environ[preflight.PREFLIGHTED] = True
        return environ


class PlainHTTPChannel(HTTPChannel):
    parser_class = HeadersFirstParser
    task_class = _Task

    _first_bytes_seen = False
    _began: float | None = None  # when the request now arriving began (None: idle between requests)
    requests: list  # waitress's own: the parsed requests waiting to be served
    request: HeadersFirstParser | None  # waitress's own: the request now being parsed
    _discard_until = 0.0  # refused: reading and dropping its body until then, then closed
    _shut = False

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self._began = self.creation_time  # the first request's headers are due from the accept
        limits = getattr(server, "berth_limits", None)
        if limits is not None and len(server.active_channels) > limits.max_connections:
            self._make_room()

    # -- connection limits (the loop thread) --------------------------------------------------

    def _waiting(self) -> bool:
        """No request in progress here: idle, or its headers still arriving, or refused."""
        if self._discard_until:
            return True
        return (
            not self.requests
            and not self.total_outbufs_len
            and (self.request is None or not self.request.headers_finished)
        )

    def _make_room(self) -> None:
        waiting = [
            c
            for c in list(self.server.active_channels.values())
            if c is not self and isinstance(c, PlainHTTPChannel) and c._waiting()
        ]
        if waiting:  # else waitress stops accepting until a connection closes
            min(waiting, key=lambda c: c.last_activity).handle_close()

    def expired(self, now: float, limits: ConnectionLimits) -> bool:
        if self._discard_until:
            return now > self._discard_until
        if self.requests or self.total_outbufs_len:
            return False  # a request running or its answer being sent: waitress's BODY_STALL
        if self.request is not None and self.request.headers_finished:
            return False  # a body arriving: BODY_STALL too
        if self._began is not None:
            return now - self._began > limits.header_timeout
        return now - self.last_activity > limits.keepalive_timeout

    def readable(self) -> bool:
        return bool(self._discard_until) or super().readable()

    def received(self, data: bytes) -> bool:
        if self._discard_until:
            return True  # a refused request's body: dropped
        if not self._first_bytes_seen and data:
            self._first_bytes_seen = True
            if data[0] == TLS_HANDSHAKE:
                self._reply_and_close(REFUSAL)
                return True
        before = self.request
        with spool.receiving(self):  # a body that starts spooling now knows its request
            result = super().received(data)
        if self.request is None:
            self._began = None
        elif self._began is None or (before is not None and self.request is not before):
            self._began = time.time()
        return result

    def handle_write(self) -> None:
        super().handle_write()
        if self._discard_until and not self._shut and not self.total_outbufs_len and self.socket is not None:
            # The refusal is out: say so (FIN) and keep reading what the client still sends
            # until it closes or LINGER passes; closing with unread bytes would send a reset,
            # which can destroy the refusal before the client reads it.
            self._shut = True
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                self.will_close = True

    def _reply_and_close(self, data: bytes) -> None:
        with self.outbuf_lock:
            self.outbufs[-1].append(data)
            self.current_outbuf_count += len(data)
            self.total_outbufs_len += len(data)
        self.close_when_flushed = True

    # -- preflight (a request thread) ---------------------------------------------------------

    def service(self) -> None:
        request = self.requests[0]
        if not request.preflight:
            return super().service()
        try:
            marker, refusal = self._preflight(request)
        except Exception:
            self.logger.exception("Exception while deciding %s on its headers", request.path)
            marker, refusal = None, _response(request.version, "500 Internal Server Error", [], b"", head=True)
        if refusal is not None:
            self._refuse(request, refusal)
        elif marker is not None:
            self._read_body(request, marker.body_limit)
        if self.connected:
            self.server.pull_trigger()
        self.last_activity = time.time()

    def _preflight(self, request: HeadersFirstParser) -> tuple[preflight.Preflight, bytes | None]:
        """Run the application on the request's headers: its decision, and the refusal to send
        (None if it let the request through)."""
        environ = _Task(self, request).get_environment()
        environ["wsgi.input"] = io.BytesIO()
        marker = environ[preflight.KEY] = preflight.Preflight()
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        body = self.server.application(environ, start_response)
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if marker.passed:
            return marker, None
        return marker, _response(
            request.version, answer["status"], answer["headers"], data, head=request.command == "HEAD"
        )

    def _read_body(self, request: HeadersFirstParser, body_limit: int | None) -> None:
        """Let the body in: the parser takes the bytes held and the loop reads the rest. The
        preflight stays first in `requests` until then, so the loop reads nothing meanwhile."""
        with self.requests_lock:
            held = request.resume(body_limit)
            self.request = request
        if held:
            self.received(held)  # may complete the request (and more pipelined ones)
        with self.requests_lock:
            self.requests.pop(0)
            if self.requests:
                self.server.add_task(self)
            elif (
                self.request is not None
                and self.request.expect_continue
                and self.request.headers_finished
                and not self.sent_continue
            ):
                self.send_continue()

    def _refuse(self, request: HeadersFirstParser, data: bytes) -> None:
        with self.outbuf_lock:
            self.outbufs[-1].append(data)
            self.current_outbuf_count += len(data)
            self.total_outbufs_len += len(data)
        with self.requests_lock:
            request.held = b""
            request.close()
            self.requests = []
            self.request = None
            self._discard_until = time.time() + LINGER


def _response(version: str, status: str, headers: list, body: bytes, head: bool) -> bytes:
    """An HTTP response that closes the connection."""
    version = version if version in ("1.0", "1.1") else "1.0"
    lines = [f"HTTP/{version} {status}"]
    lines += [
        f"{name}: {value}"
        for name, value in headers
        if name.lower() not in ("connection", "content-length", "transfer-encoding", "date")
    ]
    lines += [f"Content-Length: {len(body)}", "Connection: close", f"Date: {formatdate(usegmt=True)}"]
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + body
