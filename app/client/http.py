"""The management API over HTTP, for the CLI: bearer auth, every failure turned into one clear
`ApiError` message (never a traceback), cursor pagination and lifecycle operations."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import requests

from app import __version__


class ApiError(Exception):
    """A failure the CLI reports as `error: <message>` and exit status 1; `status` is the HTTP
    status the server answered (None when it did not answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _login_hint(url: str) -> str:
    return f"berth login {url}"


class Client:
    def __init__(self, url: str, token: str | None, *, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"berth-cli/{__version__}"
        self.session.headers["Accept"] = "application/json, application/problem+json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- requests ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204), **kw) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else self.url + path
        kw.setdefault("timeout", self.timeout)
        try:
            resp = self.session.request(method, url, **kw)
        except requests.exceptions.SSLError as e:
            raise ApiError(f"TLS error talking to {self.url}: {_reason(e)}") from None
        except requests.exceptions.ConnectionError:
            raise ApiError(f"cannot reach {self.url}: is the server running? ({_login_hint(self.url)})") from None
        except requests.exceptions.Timeout:
            raise ApiError(f"{self.url} did not answer within {self.timeout:g}s") from None
        except requests.exceptions.RequestException as e:
            raise ApiError(f"request to {url} failed: {_reason(e)}") from None
        if resp.status_code not in ok:
            raise ApiError(self.describe_failure(resp), resp.status_code)
        return resp

    def json(self, method: str, path: str, **kw) -> dict:
        resp = self.request(method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise ApiError(
                f"{method} {path}: the server at {self.url} answered {resp.status_code} with something "
                f"that is not JSON (is {self.url} a Berth server?)"
            ) from None

    def get(self, path: str, **kw) -> dict:
        return self.json("GET", path, **kw)

    def describe_failure(self, resp: requests.Response) -> str:
        problem = None
        if resp.headers.get("Content-Type", "").split(";")[0].strip() in (
            "application/problem+json",
            "application/json",
        ):
            try:
                problem = resp.json()
            except ValueError:
                problem = None
        if resp.status_code == 401:
            return f"not logged in or token rejected: run {_login_hint(self.url)}"
        if isinstance(problem, dict) and problem.get("detail"):
            message = str(problem["detail"])
            fields = [
                str(p.get("name")) for p in problem.get("invalid_params") or [] if isinstance(p, dict) and p.get("name")
            ]
            fields = [f for f in fields if f not in message]
            if fields:
                message += f" (field: {', '.join(fields)})"
            if resp.status_code >= 500 and problem.get("request_id"):
                message += f" [request id {problem['request_id']}]"
            return message
        return f"{resp.request.method} {resp.url} answered {resp.status_code} {resp.reason or ''}".rstrip() + (
            f" (is {self.url} a Berth server?)" if resp.status_code == 404 else ""
        )

    # -- lists and operations ---------------------------------------------------------------

    def paged(self, path: str, key: str, *, params: dict | None = None, limit: int | None = None) -> list:
        """Every item of a cursor-paginated list (or the first `limit`), following `next_cursor`."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        items: list = []
        cursor = None
        while True:
            page_size = min(1000, limit - len(items)) if limit else 1000
            query = {**params, "limit": page_size, **({"cursor": cursor} if cursor else {})}
            body = self.get(path, params=query)
            items += body.get(key) or []
            cursor = body.get("next_cursor")
            if not cursor or (limit and len(items) >= limit):
                return items[:limit] if limit else items

    def follow(
        self, operation: dict, *, timeout: float, progress: Callable[[str], None] | None = None, interval: float = 0.25
    ) -> dict:
        """Poll a lifecycle operation until it succeeds or fails, reporting new log lines."""
        shown = 0
        deadline = time.monotonic() + timeout
        op = operation
        while True:
            log = op.get("log") or []
            if progress:
                for line in log[shown:]:
                    progress(line)
            shown = max(shown, len(log))
            if op.get("state") in ("succeeded", "failed"):
                return op
            if time.monotonic() > deadline:
                raise ApiError(
                    f"operation {op.get('id')} is still {op.get('state')} after {timeout:g}s; "
                    f"follow it at {self.url}{op['links']['self']}"
                )
            time.sleep(interval)
            op = self.get(op["links"]["self"])


def _reason(e: Exception) -> str:
    text = str(e.args[0] if e.args else e)
    return text if len(text) < 300 else text[:300] + "..."


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
