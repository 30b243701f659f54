"""A small client of the management API for tests: requests with the owner token, following
lifecycle operations to their end."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.server import Server


class Api:
    """`api("GET", "/registries")` calls `/api/v1/orgs/default/registries`; a path starting
    with `/api` or a full URL is used as given. `token=""` sends no credentials."""

    def __init__(self, server: Server, token: str | None = None) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token or server.token}"} if token != "" else {}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        if path.startswith("http"):
            url = path
        else:
            url = f"{self.server.url}{path if path.startswith('/api') else '/api/v1/orgs/default' + path}"
        return requests.request(method, url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def wait(self, operation: dict, timeout: float = 30) -> dict:
        """Follow an operation until it succeeds or fails; its last state."""
        deadline = time.monotonic() + timeout
        while True:
            op = self("GET", operation["links"]["self"]).json()
            if op["state"] in ("succeeded", "failed"):
                return op
            if time.monotonic() > deadline:
                raise AssertionError(f"operation did not finish: {op}")
            time.sleep(0.05)

    def create(self, name: str, **patch) -> dict:
        """A registry, provisioned, then changed by `patch` (a PATCH body) if given."""
        r = self("POST", "/registries", json={"name": name})
        assert r.status_code == 202, r.text
        op = self.wait(r.json()["operation"])
        assert op["state"] == "succeeded", op
        if patch:
            r = self("PATCH", f"/registries/{name}", json=patch)
            assert r.status_code == 200, r.text
        return self("GET", f"/registries/{name}").json()


def walk_blobs(data_dir: Path, registry_id: int) -> list[Path]:
    """The blob files a registry has in the filesystem store."""
    root = data_dir / "storage" / "blobs" / str(registry_id)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
