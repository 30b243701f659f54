"""The seam between Berth and waitress (pinned exactly in pyproject.toml).

app/server/ leans on waitress internals that no release promises to keep: private arguments,
attributes and methods of its channels, parser, buffers, servers and dispatcher. The first part
checks that each one is there with the shape the server package uses, so that upgrading
waitress fails here, by name, rather than somewhere in a push. The second part runs a real
waitress server on a free port, set up as `berth serve` sets it up, and checks the two things
the application receives through the seam (a spooled request body, a file response body) and
the behaviours the server package adds (early TLS refusal, short reads on the loop thread).
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import os
import socket
import threading

import pytest
import waitress
from waitress.adjustments import Adjustments
from waitress.buffers import OverflowableBuffer, ReadOnlyFileBasedBuffer, TempfileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask
from waitress.utilities import Error, RequestEntityTooLarge

from app.edge import preflight
from app.edge.file_body import FileBody
from app.edge.spooled_body import spooled_file
from app.server import inline, plain_http
from app.server.blob_body import BlobBody, sending_file_bodies
from app.server.spool import Spool

MiB = 1024 * 1024


# -- the internals app/server/ relies on ----------------------------------------------------------


def test_the_pinned_version_is_the_one_installed():
    from importlib.metadata import version

    pyproject = open(os.path.join(os.path.dirname(__file__), "../../../pyproject.toml")).read()
    assert f'"waitress=={version("waitress")}"' in pyproject


def test_create_server_takes_the_arguments_the_server_passes():
    """process.py: `_dispatcher` (inline reads), `map` and `sockets` (the metrics listener, the
    workers' shared socket), and the adjustments it sets."""
    assert "_dispatcher" in inspect.signature(waitress.create_server).parameters
    assert "map" in inspect.signature(waitress.create_server).parameters
    known = set(Adjustments._param_map)
    for name in (
        "sockets",
        "threads",
        "max_request_body_size",
        "recv_bytes",
        "inbuf_overflow",
        "ident",
        "clear_untrusted_proxy_headers",
        "channel_timeout",
        "cleanup_interval",
        "asyncore_use_poll",
        "connection_limit",
    ):
        assert name in known, name


def test_a_body_past_inbuf_overflow_goes_through_tempfile_based_buffer_newfile():
    """spool.py replaces TempfileBasedBuffer.newfile: it must still be what makes the file."""
    made = []
    original = TempfileBasedBuffer.newfile
    TempfileBasedBuffer.newfile = lambda self: made.append(self) or original(self)
    try:
        buffer = OverflowableBuffer(1024)
        buffer.append(b"x" * 65536)  # past its in-memory string limit and the overflow
        assert len(made) == 1 and isinstance(buffer.getfile(), type(original(made[0])))
        buffer.close()
    finally:
        TempfileBasedBuffer.newfile = original


def test_the_parser_has_what_headers_first_parsing_and_body_hashing_read():
    """plain_http.HeadersFirstParser and spool._hash_body_of read and set these."""
    parser = HTTPRequestParser(Adjustments())
    for method in ("received", "close", "get_body_stream"):
        assert callable(getattr(parser, method)), method
    head = b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\nContent-Range: 0-9\r\n\r\n"
    assert parser.received(head + b"12345") == len(head)  # the headers only: the channel feeds the rest
    for name in (
        "headers_finished",
        "completed",
        "body_rcv",
        "chunked",
        "content_length",
        "expect_continue",
        "error",
        "command",
        "path",
        "headers",
        "version",
    ):
        assert hasattr(parser, name), name
    assert parser.received(b"12345") == 5
    assert (parser.command, parser.path, parser.headers["CONTENT_RANGE"]) == ("PUT", "/x", "0-9")
    assert parser.headers_finished and not parser.completed and parser.body_bytes_received == 5
    assert issubclass(RequestEntityTooLarge, Error) and RequestEntityTooLarge("x").code == 413  # parser.error


def test_a_channel_has_what_the_channels_and_connection_limits_use(tmp_path):
    server = waitress.create_server(lambda e, s: [], host="127.0.0.1", port=0, map={})
    a, b = socket.socketpair()
    try:
        channel = HTTPChannel(server, a, ("127.0.0.1", 1), server.adj, map={})
        for name in (
            "requests",
            "request",
            "requests_lock",
            "outbuf_lock",
            "outbufs",
            "current_outbuf_count",
            "total_outbufs_len",
            "close_when_flushed",
            "will_close",
            "last_activity",
            "creation_time",
            "sent_continue",
            "connected",
            "server",
            "socket",
            "logger",
        ):
            assert hasattr(channel, name), name
        for method in ("received", "service", "handle_write", "readable", "send_continue", "handle_close"):
            assert callable(getattr(channel, method)), method
        assert HTTPChannel.parser_class is HTTPRequestParser and HTTPChannel.task_class is WSGITask
        assert callable(channel.outbufs[-1].append)
        for name in (
            "channel_class",
            "adj",
            "active_channels",
            "application",
            "maintenance",
            "add_task",
            "pull_trigger",
            "task_dispatcher",
        ):
            assert hasattr(server, name), name
        assert isinstance(server, BaseWSGIServer) and isinstance(server._map, dict)
        assert inspect.signature(BaseWSGIServer.maintenance).parameters.keys() == {"self", "now"}
    finally:
        server.close()
        a.close()
        b.close()


def test_the_dispatcher_and_task_have_what_inline_reads_and_preflights_override():
    for method in ("add_task", "set_thread_count", "shutdown"):
        assert callable(getattr(ThreadedTaskDispatcher, method)), method
    assert callable(WSGITask.get_environment)
    assert "request" in inspect.signature(WSGITask.__init__).parameters


def test_a_read_only_file_buffer_is_what_the_task_sends_from_the_loop():
    """blob_body.BlobBody subclasses it: waitress must still recognise it by isinstance and drive
    it through prepare/get/skip/remain."""
    source = inspect.getsource(__import__("waitress.task", fromlist=["x"]))
    assert "isinstance(app_iter, ReadOnlyFileBasedBuffer)" in source
    assert inspect.signature(ReadOnlyFileBasedBuffer.get).parameters.keys() == {"self", "numbytes", "skip"}
    assert {"self", "numbytes", "allow_prune"} == inspect.signature(ReadOnlyFileBasedBuffer.skip).parameters.keys()
    assert callable(ReadOnlyFileBasedBuffer.prepare)


# -- the seam, on a real server -------------------------------------------------------------------


class Running:
    """A waitress server on a free port, set up as app/server/process.py sets it up."""

    def __init__(self, app, spool: Spool | None = None, inline_reads: bool = False) -> None:
        self.spool = spool
        self.map: dict = {}
        dispatcher = None
        if inline_reads:
            dispatcher = inline.InlineDispatcher()
            dispatcher.set_thread_count(2)
        self.server = waitress.create_server(
            sending_file_bodies(app),
            _dispatcher=dispatcher,
            map=self.map,
            host="127.0.0.1",
            port=0,
            threads=2,
            inbuf_overflow=MiB,
            ident="",
            **plain_http.server_options(),
        )
        channel = inline.InlineChannel if inline_reads else plain_http.PlainHTTPChannel
        plain_http.install(self.server, channel, plain_http.ConnectionLimits(5.0, 5.0, 64))
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, name="waitress-loop", daemon=True)
        self.thread.start()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def stop(self) -> None:
        self.server.task_dispatcher.shutdown()
        for dispatcher in list(self.map.values()):
            dispatcher.close()
        self.thread.join(5)


@pytest.fixture
def spooling(tmp_path):
    spool = Spool(tmp_path / "spool", lambda upload_id, start: (0, hashlib.sha256())).open()
    yield spool
    spool.close()


def _let_preflights_through(environ) -> bool:
    """What the application's front doors do on a preflight they authorize."""
    marker = environ.get(preflight.KEY)
    if marker is not None:
        marker.passed = True
        return True
    return False


def test_a_large_upload_body_reaches_the_application_as_a_spooled_file_hashed_as_it_arrived(spooling):
    seen = {}

    def app(environ, start_response):
        if not _let_preflights_through(environ):
            length = int(environ["CONTENT_LENGTH"])
            spooled = spooled_file(environ["wsgi.input"], length)
            hasher = spooled.hashed(length, "any", 0) if spooled is not None else None
            seen.update(path=spooled and spooled.path, sha256=hasher and hasher.hexdigest())
        start_response("202 Accepted", [("Content-Length", "0")])
        return []

    server = Running(app, spooling)
    try:
        body = os.urandom(3 * MiB + 7)
        conn = server.connection()
        conn.request("POST", "/v2/o/r/app/blobs/uploads/", body=body)
        assert conn.getresponse().status == 202
        conn.close()
    finally:
        server.stop()
    assert os.path.dirname(seen["path"]) == str(spooling.directory)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_small_body_is_read_from_memory_not_the_spool(spooling):
    seen = {}

    def app(environ, start_response):
        seen["spooled"] = spooled_file(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Length", "0")])
        return []

    server = Running(app, spooling)
    try:
        conn = server.connection()
        conn.request("PUT", "/v2/o/r/app/manifests/v1", body=b"{}")
        assert conn.getresponse().status == 200
    finally:
        server.stop()
    assert seen["spooled"] is None


def test_a_file_body_is_sent_by_waitress_as_a_blob_body(tmp_path, monkeypatch):
    data = os.urandom(5 * MiB)
    (tmp_path / "blob").write_bytes(data)
    gets = []
    real_get = BlobBody.get
    monkeypatch.setattr(BlobBody, "get", lambda self, *a, **k: gets.append(1) or real_get(self, *a, **k))

    def app(environ, start_response):
        f = open(tmp_path / "blob", "rb")
        f.seek(100)
        start_response("200 OK", [("Content-Length", str(len(data) - 200))])
        return FileBody(f, len(data) - 200)

    server = Running(lambda e, s: app(e, s))
    try:
        conn = server.connection()
        conn.request("GET", "/v2/o/r/app/blobs/sha256:" + "a" * 64)
        answer = conn.getresponse()
        assert answer.status == 200 and answer.read() == data[100:-100]
    finally:
        server.stop()
    assert gets  # sent through waitress's buffer protocol, from its loop


def test_a_tls_handshake_is_refused_at_once():
    server = Running(lambda e, s: [])
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    finally:
        server.stop()


def test_a_manifest_get_runs_on_the_loop_thread_with_inline_reads():
    threads = {}

    def app(environ, start_response):
        threads[environ["PATH_INFO"]] = threading.current_thread().name
        body = json.dumps({}).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    server = Running(app, inline_reads=True)
    try:
        conn = server.connection()
        for path in ("/v2/o/r/app/manifests/v1", "/v2/o/r/app/tags/list"):
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        server.stop()
    assert threads["/v2/o/r/app/manifests/v1"] == "waitress-loop"
    assert threads["/v2/o/r/app/tags/list"] != "waitress-loop"
