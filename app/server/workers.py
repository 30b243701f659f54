"""`berth serve --workers N`: N server processes (app/server/process.py) on one port, supervised,
and the counter table they share in memory (app/counters/windows.py)."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import time

from app.config import Settings
from app.counters.windows import WindowTable
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


def serve_workers(settings: Settings, create_app: AppFactory, metrics: MetricsListener | None = None) -> int:
    """`--workers N`: N server processes on one port (one Python process uses about one core;
    this uses them all). A worker that dies is started again; SIGTERM or SIGINT stops them all.
    Whatever one worker knows that another needs lives in the database, the blob store, files
    under the data directory (upload locks, tag-list caches), or the counter table: made here
    before the workers are forked, in memory they all map (app/counters/windows.py), it holds
    the rate-limit and login-failure counters without BERTH_REDIS_URL, so that a budget holds
    across the workers, not per worker, and with Redis while Redis cannot be reached. A worker
    that dies leaves the counts as they were; they last as long as the supervisor.

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
    counters = _counter_table()
    children: dict[int, int] = {}
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with_parent()
            code = 1
            try:
                listener = sock
                if reuse_port:
                    listener = bound()
                    sock.close()
                    listener.listen(2048)
                    listener.setblocking(False)
                code = serve_process(settings, create_app, listener, metrics, counters)
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
    # The workers share the supervisor's memory after fork until they write to a page. Python's
    # collector writes to every object it examines, so without this each worker's first
    # collections copied most of the imported code and data (the three processes' PSS went from
    # 82 to 125 MiB over 10,000 requests; 98 with it). Frozen objects are never examined again.
    gc.collect()
    gc.freeze()
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
        gone = children.pop(pid) if pid in children else None
        if gone is not None and not stopping:
            print(f"worker {pid} exited ({status}); starting another", file=sys.stderr, flush=True)
            time.sleep(1)
            spawn(gone)
    if counters is not None:
        counters.close()
    return 0


def _counter_table() -> WindowTable | None:
    try:
        return WindowTable(shared=True)
    except OSError as e:  # no memory for the table, or no file for its locks
        print(
            f"warning: the workers' shared counters cannot be made here ({e.strerror or e}): each worker "
            "counts rate limits and login failures on its own; set BERTH_REDIS_URL to share one budget",
            file=sys.stderr,
            flush=True,
        )
        return None
