"""How a client reaches a registry, in each of the production topology's forms, against one test
server on 127.0.0.1 (names are given in the Host header; nothing needs to resolve them):

- path:    the shared endpoint, `/v2/<registry>/<repository>/...`
- host:    `<registry>.<BERTH_DOMAIN>`, `/v2/<repository>/...`
- custom:  the registry's verified custom domain, `/v2/<repository>/...`
- gateway: the platform host, with the registry header the registry's HTTPRoute stamps
           (the server must trust 127.0.0.1 as its proxy)

and the Docker token flow as clients run it: the request without credentials, then a token from
the challenge's realm for its service and scope, then the request again with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

MODES = ("path", "host", "custom", "gateway")
REGISTRY_HEADER = "X-Berth-Registry"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Endpoints:
    base_url: str  # http://127.0.0.1:PORT
    domain: str = "registry.localhost"
    custom: dict[str, str] = field(default_factory=dict)  # registry -> verified custom domain

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port

    def netloc(self, mode: str, registry: str) -> str:
        if mode == "path":
            return urlsplit(self.base_url).netloc
        if mode == "custom":
            return f"{self.custom[registry]}:{self.port}"
        return f"{registry}.{self.domain}:{self.port}"

    def address(self, mode: str, path: str) -> tuple[str, dict]:
        """(url, headers) for a path-form `/v2/<registry>/...` path in `mode`."""
        if mode == "path" or not path.startswith("/v2/"):
            return self.base_url + path, {}
        registry, _, rest = path[len("/v2/") :].partition("/")
        headers = {"Host": self.netloc(mode, registry)}
        if mode == "gateway":
            headers[REGISTRY_HEADER] = registry
        return f"{self.base_url}/v2/{rest}", headers

    def request(
        self,
        mode: str,
        method: str,
        path: str,
        *,
        password: str | None = None,
        flow: str = "basic",
        headers: dict | None = None,
        **kw,
    ) -> requests.Response:
        """`flow`: "basic" sends the password as Basic credentials with the request itself;
        "token" runs the token flow with it (None: anonymously)."""
        url, address_headers = self.address(mode, path)
        all_headers = {**address_headers, **(headers or {})}
        kw.setdefault("timeout", 20)
        kw.setdefault("allow_redirects", False)
        if flow == "basic":
            auth = ("user", password) if password is not None else None
            return requests.request(method, url, headers=all_headers, auth=auth, **kw)
        first = requests.request(method, url, headers=all_headers, **kw)
        challenge = first.headers.get("WWW-Authenticate", "")
        if first.status_code != 401 or not challenge.startswith("Bearer "):
            return first
        token = self.fetch_token(dict(_CHALLENGE.findall(challenge)), password, address_headers.get(REGISTRY_HEADER))
        if token.status_code != 200:
            return token
        all_headers["Authorization"] = f"Bearer {token.json()['token']}"
        return requests.request(method, url, headers=all_headers, **kw)

    def fetch_token(
        self, challenge: dict, password: str | None, gateway_registry: str | None = None, **params
    ) -> requests.Response:
        """A token from the challenge's realm (reached on 127.0.0.1 with the realm's host as Host)."""
        realm = urlsplit(challenge["realm"])
        headers = {"Host": realm.netloc}
        if gateway_registry:
            headers[REGISTRY_HEADER] = gateway_registry
        query = {"service": challenge.get("service", "")}
        if challenge.get("scope"):
            query["scope"] = challenge["scope"]
        query.update(params)
        auth = ("user", password) if password is not None else None
        return requests.get(self.base_url + realm.path, params=query, headers=headers, auth=auth, timeout=20)

    def token(self, mode: str, registry: str, scope: str, password: str | None) -> str:
        """A registry token for `scope` on `registry`'s endpoint in `mode`, as a client gets one."""
        netloc = self.netloc(mode, registry)
        r = self.fetch_token(
            {"realm": f"http://{netloc}/auth/token", "service": netloc, "scope": scope},
            password,
            registry if mode == "gateway" else None,
        )
        assert r.status_code == 200, r.text
        return r.json()["token"]
