"""The identity provider's signing keys: a cache that a slow, hanging or failing provider cannot
stall, and that tokens naming made-up keys cannot turn into a flood of fetches.

Why not pyjwt's PyJWKClient: it fetches under one lock and starts its cool-down only after a fetch
succeeds, so while the provider hung every token with an unknown `kid` (anyone can make one) set
off another fetch in turn, and requests with cached keys queued behind them (issue 16). Here:

- A cached key is used at once: verifying with it never waits on a fetch.
- Fetches run on a thread of their own, one at a time, each with a timeout, and at most one per
  cool-down, which starts when a fetch starts, whether it then succeeds, fails or hangs.
- A token with an unknown `kid` waits for a fetch only briefly: the request that starts one waits
  up to the timeout; a request that comes while it runs waits only until it has run JOIN_SECONDS.
  Then the key is unknown, or the keys cannot be fetched: either way a 401.
- Keys older than the lifespan are fetched again in the background while the cached ones keep
  working; a fetch that succeeds replaces the whole set, so a key the provider dropped stops
  working, and one that fails keeps the keys we have (an outage is not a reason to refuse them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

import jwt

from app.clock import SYSTEM, Clock

log = logging.getLogger("berth.idp")

JOIN_SECONDS = 1.0
MAX_JWKS_BYTES = 1024 * 1024  # a JWKS is a few KiB; a provider must not make us hold more


class KeysUnavailable(Exception):
    """The key is not cached and the provider's keys cannot be fetched now."""


class UnknownKey(Exception):
    """The provider's keys, as last fetched, have no key with this `kid`."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # The JWKS URL is configuration; a redirect elsewhere is not the operator's choice.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class SigningKeys:
    def __init__(
        self, url: str, timeout: float = 3.0, cooldown: float = 10.0, lifespan: float = 300.0, clock: Clock = SYSTEM
    ) -> None:
        self.url = url
        self.clock = clock  # the cache's age, the cool-down and the join wait; not the download's deadline
        self.timeout = timeout
        self.cooldown = cooldown
        self.lifespan = lifespan
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = threading.Lock()  # guards the fields below; never held while fetching
        self._fetched_at: float | None = None  # when the cached keys were fetched (monotonic)
        self._started_at = float("-inf")  # when the last fetch started
        self._running: threading.Event | None = None  # set when the running fetch ends
        self._failure: str | None = None  # why the last fetch failed; None after a success

    @property
    def fetching(self) -> bool:
        return self._running is not None

    def get(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            if self._fetched_at is not None and self.clock.monotonic() - self._fetched_at > self.lifespan:
                with self._lock:
                    self._start()  # refresh in the background; this request goes on with the cached key
            return key
        with self._lock:
            now = self.clock.monotonic()
            done = self._running
            if done is not None:
                wait = self._started_at + JOIN_SECONDS - now
            else:
                done, wait = self._start(), self.timeout
        if done is not None:
            done.wait(max(0.0, wait))
        key = self._keys.get(kid)
        if key is not None:
            return key
        failure = self._failure
        if (done is not None and not done.is_set()) or failure is not None:
            raise KeysUnavailable(failure or f"no answer from {self.url} yet")
        raise UnknownKey(kid)

    def _start(self) -> threading.Event | None:
        """Start a fetch unless one runs or the cool-down has not passed (call with the lock held)."""
        now = self.clock.monotonic()
        if self._running is not None or now - self._started_at < self.cooldown:
            return None
        self._started_at = now
        self._running = threading.Event()
        threading.Thread(target=self._fetch, args=(self._running,), name="jwks-fetch", daemon=True).start()
        return self._running

    def _fetch(self, done: threading.Event) -> None:
        try:
            keys = self._download()
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the cached keys stay and requests go on
            failure = f"{type(e).__name__}: {e}"
            log.warning("identity provider keys cannot be fetched from %s: %s", self.url, failure)
            with self._lock:
                self._failure = failure
                self._running = None
        else:
            with self._lock:
                self._keys, self._fetched_at, self._failure = keys, self.clock.monotonic(), None
                self._running = None
        done.set()

    def _download(self) -> dict[str, jwt.PyJWK]:
        deadline = time.monotonic() + self.timeout
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.build_opener(_NoRedirects()).open(request, timeout=self.timeout) as response:
            body = bytearray()
            # read1: one socket read at a time, so that the deadline holds for a slow trickle too
            while chunk := response.read1(65536):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the JWKS took more than {self.timeout} s")
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS: no 'keys' list")
        keys = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use") not in (None, "sig"):
                continue  # an encryption key
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type or curve we do not verify with; the others still count
        if not keys:
            raise ValueError("the JWKS has no signing key Berth can use")
        return keys
