"""The counter service: one process's in-memory rate-limit and login-failure counters, answered to
its sibling `berth serve --workers` processes over a Unix socket, so that the workers of one
machine hold one budget between them without Redis (app/server/workers.py starts it).

The wire: an AF_UNIX SOCK_SEQPACKET socket (the kernel keeps each message whole: one send and
one recv per call, no framing) in a directory made for it, 0700, so another local user cannot
even connect. A peer is served only after it answers a challenge with HMAC-SHA256 under a key
made at random by the supervisor at each start and handed to the workers by fork (never in the
environment or on disk). A message is a small JSON list of calls, each naming a `limits`
strategy, an operation, the rate and the identifiers; the strategies run where the counters are,
so a request costs one round trip: its rate limit (hit and window stats together) and, when it
carries credentials, the login throttle's test for its address (app/edge/rate_limit.py). One
thread answers every peer (a selector loop): each call is a few microseconds of work, and no lock
is shared.

Measured on the 2-core development VM (a loop of calls from one thread, the sliding window's hit
and stats in the service; scripts/counter-rtt): this wire ~40-55 us a round trip, of which ~12 us
is the strategy itself; the stdlib's multiprocessing.connection (pickles, its own HMAC challenge)
~45 us and multiprocessing.managers ~52-62 us. Under a full load the hop costs far more on this
VM (docs/performance.md, "Shared counters without Redis"). The same cost per wire, so the choice
was made on the failure modes:
a manager's proxy call has no timeout (a hung service would hang the request), and
multiprocessing.connection has none on its handshake and reads only through a poll per call,
while a socket timeout here bounds connect, handshake, send and receive alike.

A peer that sends something it cannot answer (only an authenticated sibling can: a bug) is
disconnected, and the peer falls back as for any failure (app/counters/__init__.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import selectors
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

import limits
from limits.errors import StorageError
from limits.limits import GRANULARITIES
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES
from limits.util import WindowStats

log = logging.getLogger("berth.counters")

# The service answers in tens of microseconds; past this a call is given up and counted locally.
TIMEOUT_SECONDS = 0.2
MAX_MESSAGE = 64 * 1024
CHALLENGE_BYTES = 32


@dataclass(frozen=True)
class ServiceAddress:
    """Where the counter service listens, and the key its peers prove they hold."""

    path: str
    key: bytes = field(repr=False)


def _proof(key: bytes, challenge: bytes) -> bytes:
    return hmac.new(key, challenge, hashlib.sha256).digest()


class ServiceSocket:
    """The service's listening socket, in a private directory of its own (removed by `close`)."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="berth-counters-")  # 0700
        path = os.path.join(self.directory, "socket")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.socket.bind(path)
            self.socket.listen(256)
        except OSError:
            self.close()
            raise
        self.address = ServiceAddress(path, os.urandom(32))

    def close(self) -> None:
        self.socket.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@functools.lru_cache(maxsize=256)
def _item(granularity: str, amount: int, multiples: int, namespace: str) -> limits.RateLimitItem:
    return GRANULARITIES[granularity](amount, multiples, namespace)


class _Answerer:
    """The calls, run on one in-memory storage."""

    def __init__(self) -> None:
        storage = MemoryStorage()
        self.strategies = {name: strategy(storage) for name, strategy in STRATEGIES.items()}

    def __call__(self, message: bytes) -> bytes:
        return json.dumps([self._one(*call) for call in json.loads(message)], separators=(",", ":")).encode()

    def _one(self, operation: str, strategy_name: str, spec: list, identifiers: list) -> Any:
        strategy = self.strategies[strategy_name]
        granularity, amount, multiples, namespace = spec
        item = _item(granularity, int(amount), int(multiples), str(namespace))
        ids = [str(i) for i in identifiers]
        if operation == "hit":
            return strategy.hit(item, *ids)
        if operation == "test":
            return strategy.test(item, *ids)
        if operation == "stats":
            return list(strategy.get_window_stats(item, *ids))
        if operation in ("hit+stats", "test+stats"):
            allowed = strategy.hit(item, *ids) if operation == "hit+stats" else strategy.test(item, *ids)
            return [allowed, *strategy.get_window_stats(item, *ids)]
        raise ValueError(f"unknown operation {operation!r}")


def serve(listener: socket.socket, key: bytes) -> None:
    """Answer peers on `listener` until the process ends (the counter service process's body)."""
    answer = _Answerer()
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    challenges: dict[socket.socket, bytes] = {}  # peers that have yet to answer theirs

    def drop(peer: socket.socket) -> None:
        challenges.pop(peer, None)
        selector.unregister(peer)
        peer.close()

    while True:
        for ready, _ in selector.select():
            sock = ready.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                try:
                    peer, _ = listener.accept()
                except OSError:
                    continue
                challenge = os.urandom(CHALLENGE_BYTES)
                try:
                    peer.setblocking(False)
                    peer.send(challenge)
                except OSError:  # gone already (a peer that gave up waiting)
                    peer.close()
                    continue
                challenges[peer] = challenge
                selector.register(peer, selectors.EVENT_READ)
                continue
            try:
                message = sock.recv(MAX_MESSAGE)
                if not message:
                    drop(sock)
                elif sock in challenges:
                    if hmac.compare_digest(message, _proof(key, challenges.pop(sock))):
                        continue
                    log.warning("counter service: a peer failed the challenge; disconnected")
                    drop(sock)
                else:
                    sock.send(answer(message))
            except OSError:
                drop(sock)
            except (ValueError, TypeError, LookupError) as e:
                log.warning("counter service: a call it cannot answer (%s: %s); disconnected", type(e).__name__, e)
                drop(sock)


class ServiceClient:
    """A worker's side: one connection per thread, opened on first use and after a failure.
    Every failure (refused, timed out, closed) is a StorageError, as Redis's are."""

    def __init__(self, address: ServiceAddress, timeout: float = TIMEOUT_SECONDS) -> None:
        self.address = address
        self.timeout = timeout
        self._local = threading.local()

    def call(self, calls: list[list]) -> list:
        """Several calls (RemoteStrategy.call) in one round trip; their results, in order."""
        data = json.dumps(calls, separators=(",", ":")).encode()
        sock: socket.socket | None = getattr(self._local, "socket", None)
        try:
            if sock is not None:
                try:
                    return self._exchange(sock, data)
                except ConnectionError:
                    pass  # closed under it (the service was started again): once more, on a new connection
            sock = self._local.socket = self._connect()
            return self._exchange(sock, data)
        except (OSError, ValueError) as e:
            raise StorageError(e) from e

    def _exchange(self, sock: socket.socket, data: bytes) -> Any:
        try:
            sock.send(data)
            reply = sock.recv(MAX_MESSAGE)
            if not reply:
                raise ConnectionResetError("the counter service closed the connection")
            return json.loads(reply)
        except BaseException:
            # A late answer would be read as the next call's: this connection is done.
            self._local.socket = None
            sock.close()
            raise

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.address.path)
            challenge = sock.recv(CHALLENGE_BYTES)
            if len(challenge) != CHALLENGE_BYTES:
                raise ConnectionError("the counter service sent no challenge")
            sock.send(_proof(self.address.key, challenge))
        except BaseException:
            sock.close()
            raise
        return sock


class RemoteStrategy:
    """A `limits` strategy run by the counter service: hit, test and get_window_stats as the
    library's, plus hit and test with the window's stats in the same round trip."""

    def __init__(self, client: ServiceClient, strategy: type) -> None:
        self.client = client
        self.name = next(name for name, known in STRATEGIES.items() if known is strategy)

    def call(self, operation: str, item: limits.RateLimitItem, identifiers) -> list:
        """One call, as ServiceClient.call sends it."""
        spec = [item.GRANULARITY.name, item.amount, item.multiples, item.namespace]
        return [operation, self.name, spec, [str(i) for i in identifiers]]

    def _call(self, operation: str, item: limits.RateLimitItem, identifiers) -> Any:
        return self.client.call([self.call(operation, item, identifiers)])[0]

    def hit(self, item: limits.RateLimitItem, *identifiers) -> bool:
        return bool(self._call("hit", item, identifiers))

    def test(self, item: limits.RateLimitItem, *identifiers) -> bool:
        return bool(self._call("test", item, identifiers))

    def get_window_stats(self, item: limits.RateLimitItem, *identifiers) -> WindowStats:
        reset, remaining = self._call("stats", item, identifiers)
        return WindowStats(reset, remaining)

    def with_stats(self, operation: str, item: limits.RateLimitItem, *identifiers) -> tuple[bool, WindowStats]:
        """`operation` ("hit" or "test") and the window's stats after it, in one call."""
        allowed, reset, remaining = self._call(operation + "+stats", item, identifiers)
        return bool(allowed), WindowStats(reset, remaining)
