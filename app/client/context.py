"""What every HTTP command of the `berth` CLI runs in: the saved login, a client for it, and one
way of failing (`error: ...` on stderr, exit 1, never a traceback)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from urllib.parse import quote

from app.client import config
from app.client.http import ApiError, Client


class Context:
    def __init__(self, args: argparse.Namespace, login: config.Login) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        if not login.url:  # http_command says so before it gets here
            raise config.ConfigError("not logged in: run berth login <url> (or set BERTH_URL and BERTH_TOKEN)")
        self.org = login.org
        self.url: str = login.url
        self.client = Client(login.url, login.token)

    def org_path(self, suffix: str = "") -> str:
        return f"/api/v1/orgs/{quote(self.org, safe='')}{suffix}"

    def registry_path(self, name: str, suffix: str = "") -> str:
        return self.org_path(f"/registries/{quote(name, safe='')}{suffix}")


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def guarded(fn):
    """Every expected failure as `error: ...` and exit 1; never a traceback (BERTH_DEBUG=1 shows
    one for what we did not expect)."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            status = fn(args) or 0
            sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
            return status
        except (ApiError, config.ConfigError) as e:
            return fail(str(e))
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
        except BrokenPipeError:  # `berth registry list | head`: the reader has gone, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except Exception as e:  # a bug of ours: still one line, unless asked for the traceback
            if os.environ.get("BERTH_DEBUG"):
                raise
            return fail(f"unexpected {type(e).__name__}: {e} (BERTH_DEBUG=1 shows the traceback)")

    return run


def http_command(fn):
    """A command on the saved (or BERTH_URL/BERTH_TOKEN) login."""

    @guarded
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        login = config.resolve(getattr(args, "org", None))
        if not login.url:
            return fail("not logged in: run berth login <url> (or set BERTH_URL and BERTH_TOKEN)")
        return fn(Context(args, login))

    return run
