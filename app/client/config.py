"""The CLI's saved login: `$BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/credentials.json`, else
`~/.config/berth/credentials.json`; a JSON object `{"url", "token", "org"}`, mode 0600 in a 0700
directory. `BERTH_URL`, `BERTH_TOKEN` and `BERTH_ORG` override it (CI needs no file)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ORG = "default"


def path() -> Path:
    explicit = os.environ.get("BERTH_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "berth" / "credentials.json"


def normalize_url(url: str) -> str:
    """`127.0.0.1:5000` -> `http://127.0.0.1:5000`; `registry.example.com` -> `https://...`;
    no trailing slash."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        host = url.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        url = ("http://" if loopback else "https://") + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


@dataclass
class Login:
    url: str | None
    token: str | None
    org: str
    source: str  # where the URL came from, for messages


def load_file() -> dict:
    p = path()
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {p}: {e}") from None
    return data if isinstance(data, dict) else {}


def resolve(org: str | None = None) -> Login:
    """The URL, token and organization to use: flags, then environment, then the saved login.
    The saved token is only sent to the URL it was saved for."""
    saved = load_file()
    url, source = os.environ.get("BERTH_URL"), "BERTH_URL"
    if not url:
        url, source = saved.get("url"), str(path())
    if url:
        try:
            url = normalize_url(url)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None
    token = os.environ.get("BERTH_TOKEN") or None
    if token is None and saved.get("url") and url == saved.get("url"):
        token = saved.get("token")
    org = org or os.environ.get("BERTH_ORG") or (saved.get("org") if url == saved.get("url") else None) or DEFAULT_ORG
    return Login(url=url, token=token, org=org, source=source)


def save(url: str, token: str, org: str | None) -> Path:
    """Write the login with mode 0600 (never readable by others, not even for a moment)."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if p.parent.name == "berth":
        os.chmod(p.parent, 0o700)
    body = {"url": url, "token": token}
    if org:
        body["org"] = org
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
            f.write("\n")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def remove() -> bool:
    try:
        path().unlink()
        return True
    except FileNotFoundError:
        return False


class ConfigError(Exception):
    pass
