"""Google Cloud Storage for tests: `gcp-storage-emulator` on a free loopback port (the real
`google-cloud-storage` client talks to it through STORAGE_EMULATOR_HOST), an offline
service-account key that can sign V4 URLs, and a fault-injecting proxy for 5xx/429 tests.

The emulator keeps objects in memory, ignores pagination, generation preconditions and
signatures, answers one request at a time, and has no HEAD; Berth's GCS driver needs none of
those (see app/storage/gcs.py)."""

from __future__ import annotations

import http.client
import importlib.util
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support import processes
from tests.support.components import IN_CI
from tests.support.server import free_port

BUCKET = "berth-test"


def require_emulator() -> None:
    """The emulator is a test extra (pip install -e .[test]); under CI its absence fails."""
    missing = [m for m in ("gcp_storage_emulator", "google.cloud.storage") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: .venv/bin/pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class GCSEmulator:
    log_path: Path
    bucket: str = BUCKET
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GCSEmulator:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--in-memory",
                "--default-bucket",
                self.bucket,
                "--quiet",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("gcp-storage-emulator did not start within 30s")

    def create_bucket(self, name: str) -> None:
        r = requests.post(f"{self.url}/storage/v1/b", params={"project": "test"}, json={"name": name}, timeout=10)
        assert r.status_code in (200, 409), r.text

    def stop(self) -> None:
        processes.stop(self.process)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """One emulator per test module that imports this fixture; tests use prefixes of their own."""
    require_emulator()
    emulator = GCSEmulator(tmp_path_factory.mktemp("gcs") / "emulator.log").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def gcs_credentials(tmp_path_factory):
    """A service-account key file that signs V4 URLs offline."""
    return service_account_file(tmp_path_factory.mktemp("gcs-sa") / "service-account.json")


def service_account_file(path: Path) -> Path:
    """A service-account key file with a freshly generated RSA key: enough to sign V4 URLs
    offline (the emulator does not check signatures, real GCS would refuse them)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "berth-test",
                "private_key_id": "test-key",
                "private_key": pem,
                "client_email": "berth@berth-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


class FaultyProxy:
    """A loopback HTTP proxy in front of the emulator that answers the next `fail_next`
    requests (or every request while `fail_always`) with `status` instead of forwarding them."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.status = 503
        self.fail_next = 0
        self.fail_always = False
        self.failed = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    fail = proxy.fail_always or proxy.fail_next > 0
                    if proxy.fail_next > 0:
                        proxy.fail_next -= 1
                    if fail:
                        proxy.failed += 1
                    else:
                        proxy.forwarded += 1
                if fail:
                    payload = json.dumps({"error": {"code": proxy.status, "message": "injected"}}).encode()
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")
                }
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, *, next: int = 0, always: bool = False, status: int = 503) -> None:
        with self._lock:
            self.fail_next, self.fail_always, self.status, self.failed = next, always, status, 0

    def heal(self) -> None:
        self.fail(next=0, always=False)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
