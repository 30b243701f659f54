"""`berth serve --workers N`: N server processes (app/server/process.py) on one port, supervised,
and the counter service they share (app/counters/service.py)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from app.config import Settings
from app.counters import service as counter_service
from app.server.metrics_listener import MetricsListener
from app.server.process import AppFactory, cannot_listen, serve_process


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervising process dies, even by kill -9, so no
    orphan keeps the port."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _name_process(name: bytes) -> None:
    """Linux: the name `ps -o comm` and /proc/PID/comm show (15 bytes at most)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, name)  # PR_SET_NAME
    except OSError:
        pass


COUNTER_SERVICE_NAME = b"berth-counters"


def serve_workers(settings: Settings, create_app: AppFactory, metrics: MetricsListener | None = None) -> int:
    """`--workers N`: N server processes on one port (one Python process uses about one core;
    this uses them all). A worker that dies is started again; SIGTERM or SIGINT stops them all.
    Whatever one worker knows that another needs lives in the database, the blob store, files
    under the data directory (upload locks, tag-list caches), or a counter service: without
    BERTH_REDIS_URL, one more process, started first, keeps the rate-limit and login-failure
    counters in memory for all of them (app/counters/service.py), so a budget holds across the
    workers, not per worker. It is started again if it dies (its counts start again; the workers
    count on their own meanwhile, app/counters/). With Redis, they share Redis instead.

    Where the kernel has SO_REUSEPORT (Linux), each worker listens on a socket of its own and
    the kernel spreads new connections across them. With one shared socket, whichever worker
    woke first accepted a whole burst of connections (16 at once could go 15 to 1), leaving the
    other core idle. The supervisor holds a bound, not listening, socket on the port so that it
    stays reserved while a worker restarts; connections waiting in a dying worker's queue are
    reset, as with any listener that closes."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    reuse_port = hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")

    def bound() -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((settings.host, port))
        return s

    port = settings.port
    try:
        sock = bound()
    except OSError as e:
        return cannot_listen(settings, e)
    port = sock.getsockname()[1]
    if not reuse_port:  # one listening socket, shared by every worker
        sock.listen(2048)
        sock.setblocking(False)
    counters = None if settings.redis_url else _open_counter_service()
    children: dict[int, int] = {}
    counters_pid = 0
    stopping = False

    supervisor = os.getpid()

    def spawn_counters() -> None:
        nonlocal counters_pid
        assert counters is not None
        counters_pid = os.fork()
        if counters_pid == 0:
            # Ctrl-C reaches the whole process group: the service stays until the workers have
            # drained their requests, and the supervisor stops it last.
            signal.signal(signal.SIGINT, signal.SIG_IGN)

            def stopped(signum, _frame) -> None:
                if os.getppid() != supervisor:  # it died (kill -9): nobody else removes the socket
                    counters.close()
                os._exit(0)

            signal.signal(signal.SIGTERM, stopped)
            _die_with_parent()
            _name_process(COUNTER_SERVICE_NAME)
            try:
                sock.close()
                counter_service.serve(counters.socket, counters.address.key)
            finally:
                os._exit(1)

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with_parent()
            code = 1
            try:
                if counters is not None:
                    counters.socket.close()  # the service's to accept on, not a worker's
                listener = sock
                if reuse_port:
                    listener = bound()
                    sock.close()
                    listener.listen(2048)
                    listener.setblocking(False)
                code = serve_process(
                    settings, create_app, listener, metrics, counters.address if counters is not None else None
                )
            finally:
                os._exit(code)
        children[pid] = slot

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if counters is not None:
        spawn_counters()
    for slot in range(settings.workers):
        spawn(slot)
    print(f"Berth listening on http://{settings.host}:{port} ({settings.workers} worker processes)", flush=True)
    if metrics is not None:
        print(f"Metrics on {metrics.url} (all workers)", flush=True)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == counters_pid:
            counters_pid = 0
            if not stopping:
                print(
                    f"counter service {pid} exited ({status}); starting another (rate-limit and login-failure "
                    "counts start again)",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(0.2)
                spawn_counters()
            continue
        gone = children.pop(pid) if pid in children else None
        if gone is not None and not stopping:
            print(f"worker {pid} exited ({status}); starting another", file=sys.stderr, flush=True)
            time.sleep(1)
            spawn(gone)
    if counters is not None:  # last: the workers counted with it until they stopped
        if counters_pid:
            try:
                os.kill(counters_pid, signal.SIGTERM)
                os.waitpid(counters_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        counters.close()
    return 0


def _open_counter_service() -> counter_service.ServiceSocket | None:
    try:
        return counter_service.ServiceSocket()
    except OSError as e:  # no AF_UNIX SOCK_SEQPACKET (not Linux), or no writable temporary directory
        print(
            f"warning: the workers' shared counters cannot be served here ({e.strerror or e}): each worker "
            "counts rate limits and login failures on its own; set BERTH_REDIS_URL to share one budget",
            file=sys.stderr,
            flush=True,
        )
        return None
