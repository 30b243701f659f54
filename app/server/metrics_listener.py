"""The metrics listener: `GET /metrics` on an address of its own (BERTH_METRICS_ADDR), and
nowhere else.

Why its own address: the series are labelled with every registry's name, and the public port is
what every registry hostname's route reaches. The metrics address is a container port that the
tenant-facing Service does not expose (infra/platform_resources.py). This listener runs an app
with no /v2, /api or /auth routes, and the public app has no /metrics route, so neither port can
answer the other's paths. Without BERTH_METRICS_ADDR nothing listens for metrics.

How `--workers N` reports the whole server rather than one worker: prometheus_client's
multiprocess mode. Before any worker starts, `MetricsListener.open` makes a fresh counters
directory and switches prometheus_client to values kept in mmap files there, one set per process
(named by pid). It binds and listens on the socket then, once; every worker inherits it and
serves it with a small waitress server of its own (on threads of its own, so a scrape is
answered while all the request threads are busy). The kernel hands each scrape to one worker,
and any worker gives the same answer: it sums every process's files and reads the stored-state
gauges from the shared database. A worker that dies leaves its files, so the totals keep its
counts (a counter never goes down while the server runs); the directory is removed when the
server stops. `--workers 1` takes the same path with one process.

Not chosen: the supervisor serving and aggregating. It would query the database (the stored-state
gauges) in the process that forks workers, whose pooled connections a new worker would then
inherit, and it would still need some way to get every worker's counts.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading

import falcon
import waitress
from prometheus_client import values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from app.config import Settings
from app.db.setup import ReleaseConnection
from app.edge import error_responses
from app.spec.errors import RegistryError
from app.telemetry.metrics import exposition

METRICS_PATH = "/metrics"


def parse_address(value: str) -> tuple[str, int]:
    """`host:port` (`[v6 address]:port`; no host: every IPv4 interface) -> (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise SystemExit(f"BERTH_METRICS_ADDR={value!r}: use host:port, e.g. 0.0.0.0:9090")
    return host.strip("[]") or "0.0.0.0", number


class Scrape:
    """A sink for every path: `GET /metrics` is answered, anything else is not here (404 in the
    same format as on the public port)."""

    def __init__(self, counters_dir: str) -> None:
        self.registry = exposition(counters_dir)

    def __call__(self, req: falcon.Request, resp: falcon.Response, **params) -> None:
        if req.method != "GET" or req.path != METRICS_PATH:
            raise falcon.HTTPRouteNotFound()
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)


def create_metrics_app(counters_dir: str) -> falcon.App:
    app = falcon.App(middleware=[ReleaseConnection()])  # the stored-state queries' connection
    app.add_error_handler(Exception, error_responses.handle_unexpected)
    app.add_error_handler(falcon.HTTPError, error_responses.handle_http_error)
    app.add_error_handler(RegistryError, error_responses.handle_registry_error)
    app.add_sink(Scrape(counters_dir), prefix="/")
    return app


class MetricsListener:
    """The metrics socket and counters directory of one `berth serve`, shared by its workers."""

    def __init__(self, sock: socket.socket, counters_dir: str) -> None:
        self.sock = sock
        self.counters_dir = counters_dir

    @classmethod
    def open(cls, settings: Settings) -> MetricsListener | None:
        """Bind the metrics address and start counting in files; None without BERTH_METRICS_ADDR.
        Call before any worker starts and before any metric is built."""
        if not settings.metrics_addr:
            return None
        host, port = parse_address(settings.metrics_addr)
        if port and port == settings.port:
            raise SystemExit(
                f"BERTH_METRICS_ADDR={settings.metrics_addr!r}: the metrics listener must be off the public port"
            )
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR only: with SO_REUSEPORT, it could share a port with a public listener.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
        except OSError as e:
            sock.close()
            raise SystemExit(
                f"error: cannot listen for metrics on {host}:{port}: {e.strerror or e}; "
                "choose another BERTH_METRICS_ADDR (or --metrics-addr)"
            ) from None
        counters_dir = tempfile.mkdtemp(prefix="berth-metrics-")
        # prometheus_client's multiprocess values open their file under this variable's directory.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = counters_dir
        values.ValueClass = values.MultiProcessValue()
        return cls(sock, counters_dir)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}{METRICS_PATH}"

    def serve(self) -> None:
        """Answer scrapes from this process, in the background (each worker calls this once)."""
        self._map: dict = {}
        self._server = waitress.create_server(
            create_metrics_app(self.counters_dir),
            map=self._map,
            sockets=[self.sock],
            threads=1,
            ident="",
            asyncore_use_poll=True,
        )
        self._thread: threading.Thread | None = threading.Thread(
            target=self._server.run, name="metrics-listener", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering scrapes in this process (its shutdown): waitress's loop runs while its
        map holds a socket, so closing them all ends it within a loop timeout (1 s). The
        listening socket stays open for the other workers until `close`."""
        thread = getattr(self, "_thread", None)
        if thread is None:
            return
        self._server.task_dispatcher.shutdown()
        for dispatcher in list(self._map.values()):
            if dispatcher.socket is self.sock:
                dispatcher.del_channel()  # not close(): that would close the shared socket
            else:
                dispatcher.close()
        thread.join(5)
        self._thread = None

    def close(self) -> None:
        """The server stops: nobody scrapes or counts any more."""
        self.sock.close()
        shutil.rmtree(self.counters_dir, ignore_errors=True)
