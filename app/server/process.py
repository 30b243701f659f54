"""One server process: waitress threads over the app, and the composition root's services and
background threads around it (app/server/composition.py)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

import waitress

from app.config import Settings
from app.counters.windows import WindowTable
from app.lifecycle.provisioner import ProvisionError
from app.server import inline, plain_http
from app.server.blob_body import sending_file_bodies
from app.server.composition import Runtime, build_services
from app.server.metrics_listener import MetricsListener


def check(settings: Settings) -> None:
    """Settings only the server reads, checked before any worker starts (SystemExit if bad)."""
    inline.enabled(settings)


AppFactory = Callable  # (settings, services) -> the WSGI application: app/web.py's create_app


def serve_process(
    settings: Settings,
    create_app: AppFactory,
    sock=None,
    metrics: MetricsListener | None = None,
    counter_table: WindowTable | None = None,
) -> int:
    """Serve `create_app(settings, services)` until SIGTERM or Ctrl-C, then shut down in order.
    With `sock`, accept on a listening socket shared with sibling processes; with `metrics`, also
    answer scrapes on that listener; with `counter_table`, count rate limits and login
    failures there, with the siblings."""
    from app.db.models import database
    from app.telemetry import tracing

    if tracing.setup() is not None:
        tracing.trace_database(database.obj)
    runtime = Runtime(settings, metrics, build_services(settings, counter_table))
    services = runtime.services
    try:
        services.provisioner.check()
    except ProvisionError as e:
        print(f"error: the {services.provisioner.name} provisioner cannot run here: {e}", file=sys.stderr)
        return 2
    runtime.open_spool()  # before the server listens: a body may arrive at once
    app = sending_file_bodies(create_app(settings, services))
    limits = plain_http.ConnectionLimits.of(settings)  # raises the open-file limit first
    where = {"sockets": [sock]} if sock is not None else {"host": settings.host, "port": settings.port}
    dispatcher = None
    if inline.enabled(settings):
        dispatcher = inline.InlineDispatcher(
            pushes=inline.pushes_inline(settings),
            upload_size=services.uploads.size_for_inline if inline.uploads_inline(settings) else None,
        )
        dispatcher.set_thread_count(settings.threads)
    try:
        server = waitress.create_server(
            app,
            _dispatcher=dispatcher,  # None: waitress's own
            **where,
            threads=settings.threads,
            max_request_body_size=settings.max_request_body,
            recv_bytes=settings.recv_bytes,
            inbuf_overflow=settings.inbuf_overflow,
            **plain_http.server_options(),
            ident="",
            clear_untrusted_proxy_headers=False,  # app/edge/proxies.py decides whom to believe
        )
    except OSError as e:  # before any background work started: only the spool to remove
        if dispatcher is not None:
            dispatcher.shutdown()
        runtime.stop()
        return cannot_listen(settings, e)
    runtime.start()
    plain_http.install(server, inline.InlineChannel if dispatcher is not None else plain_http.PlainHTTPChannel, limits)
    # waitress warns "Task queue depth is N" on every request that waits for a free thread: under
    # load, a log line per request, costing the CPU the queue is waiting for.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if sock is None:
        print(f"Berth listening on http://{settings.host}:{settings.port}", flush=True)
        if metrics is not None:
            print(f"Metrics on {metrics.url}", flush=True)
    # SIGTERM (the Deployment stopping a pod) ends the loop like Ctrl-C: waitress stops accepting
    # and lets the requests in progress finish, then the runtime shuts down in order.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        # One stop is enough: a second SIGTERM or Ctrl-C (a supervisor and `timeout` both
        # signalling, an impatient operator) must not cut the orderly shutdown short and lose
        # the buffered counts it writes. They are written here, not at exit: a `--workers`
        # process ends with os._exit, which runs no atexit handlers.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        runtime.stop()
    return 0


def cannot_listen(settings: Settings, error: OSError) -> int:
    print(
        f"error: cannot listen on {settings.host}:{settings.port}: {error.strerror or error}; "
        "stop what holds that port or choose another with --port (or BERTH_PORT)",
        file=sys.stderr,
        flush=True,
    )
    return 2


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
