"""Stopping the real servers tests start (redis-server, dnsmasq, containerd, the GCS emulator)."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; a stopped or missing
    process is left as it is."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
