"""Start a private Docker daemon for client tests, and stop it.

The daemon runs the way ARCHITECTURE.md describes for these machines: no iptables, no bridge,
the vfs storage driver, its own data and exec roots and a unix socket of its own. It talks to
registries on 127.0.0.1, which Docker treats as insecure (plain HTTP) by default.

Two additions keep it from touching the host: `--config-file` points at a daemon.json of our
own (so a host /etc/docker/daemon.json cannot change or break it), and that file moves the
daemon's trust key out of /etc/docker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class DockerDaemonError(RuntimeError):
    pass


class DockerDaemon:
    """One `dockerd` process with all of its state under `work_dir` and a short socket path.

    Unix socket paths are limited to ~100 bytes, so the socket, the exec root (which holds
    containerd's sockets) and the pid file live in a short directory under /tmp; the data
    root (image layers, possibly large) lives in `work_dir`.
    """

    def __init__(self, work_dir: Path, dockerd: str = "dockerd") -> None:
        self.work_dir = Path(work_dir)
        self.dockerd = dockerd
        self.short_dir = Path(tempfile.mkdtemp(prefix="berth-dk-", dir="/tmp"))
        self.socket_path = self.short_dir / "docker.sock"
        self.exec_root = self.short_dir / "exec"
        self.pidfile = self.short_dir / "docker.pid"
        self.data_root = self.work_dir / "data"
        self.config_file = self.work_dir / "daemon.json"
        self.log_path = self.work_dir / "dockerd.log"
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        """The value for DOCKER_HOST."""
        return f"unix://{self.socket_path}"

    def command(self) -> list[str]:
        return [
            self.dockerd,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "--pidfile",
            str(self.pidfile),
            "-H",
            self.host,
            "--config-file",
            str(self.config_file),
        ]

    def start(self, timeout: float = 60) -> DockerDaemon:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps({"deprecated-key-path": str(self.work_dir / "key.json")}))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for pytest must not kill it mid-test
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._cleanup()
                raise DockerDaemonError(f"dockerd exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise DockerDaemonError(f"dockerd was not ready within {timeout}s:\n{self.logs()[-3000:]}")

    def ping(self) -> bool:
        """True when the daemon answers `GET /_ping` with 200 on its socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.socket_path))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status_line = s.recv(4096).split(b"\r\n", 1)[0]
        except OSError:
            return False
        parts = status_line.split()
        return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1] == b"200"

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (dockerd then stops the containerd it started), SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self._kill_orphaned_containerd()
        self._cleanup()

    def _kill_orphaned_containerd(self) -> None:
        # Only the containerd our dockerd started: its pid file lives in our exec root.
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _cleanup(self) -> None:
        shutil.rmtree(self.short_dir, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
