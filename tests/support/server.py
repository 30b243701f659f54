"""Start the real `berth serve` on a free port, in its own process, and stop it.

A test server is ONE process (BERTH_WORKERS=1) unless its test asks for more (`env=
{"BERTH_WORKERS": "2"}`), although `berth serve` forks one worker per CPU by default: the suite
starts about 90 servers on a 2-core machine, and forking workers (and their counter service) for
each would cost every test the time and memory of processes it does not look at. The default
itself is tested by tests/integration/test_workers.py, which passes `{"BERTH_WORKERS": None}`
(None: the variable is removed from the server's environment)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    data_dir: Path
    token: str
    port: int = field(default_factory=free_port)
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    # BERTH_DATABASE_URL; with BERTH_TEST_DATABASE=postgres a fresh PostgreSQL database is made
    # at first start (tests/support/postgres.py) and kept across restarts.
    database_url: str | None = None
    # With metrics=True, the server also answers Prometheus scrapes on metrics_port
    # (BERTH_METRICS_ADDR); the public port never does.
    metrics: bool = False
    metrics_port: int = field(default_factory=free_port)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def session(self, token: str | None = "default") -> requests.Session:
        s = requests.Session()
        if token == "default":
            token = self.token
        if token:
            s.auth = ("admin", token)
        return s

    def start(self) -> Server:
        # Tests send many requests and bad credentials from one address on purpose: the rate
        # limit and the login throttle have tests of their own.
        env = {
            **os.environ,
            "BERTH_BOOTSTRAP_TOKEN": self.token,
            "BERTH_LOGIN_FAILURE_LIMIT": "100000/minute",
            "BERTH_RATE_LIMIT": "1000000/minute",
            "BERTH_WORKERS": "1",  # see the module's docstring
            **self.env,
        }
        env = {name: value for name, value in env.items() if value is not None}
        if self.database_url is None and "BERTH_DATABASE_URL" not in self.env:
            from tests.support import postgres

            if postgres.ALL_SERVERS_ON_POSTGRES:
                self.database_url = postgres.create_database()
        if self.database_url:
            env["BERTH_DATABASE_URL"] = self.database_url
        if self.metrics:
            env["BERTH_METRICS_ADDR"] = f"127.0.0.1:{self.metrics_port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"berth serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("berth serve did not start within 30s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""
