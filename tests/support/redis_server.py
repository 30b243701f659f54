"""A private redis-server on a free port, which a test stops and starts again (on the same port)
to take Redis away from a running Berth. Nothing is persisted: a restarted Redis is empty."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support import processes
from tests.support.components import require_tool
from tests.support.server import free_port


class RedisServer:
    def __init__(self, root: Path) -> None:
        self.binary = require_tool("redis-server", "apt-get install redis-server")
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.root / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.client_or_none() is not None:
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.root / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 20 s")

    def client_or_none(self):
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        except redis.RedisError:
            return None
        return client

    def stop(self) -> None:
        processes.stop(self.process)
