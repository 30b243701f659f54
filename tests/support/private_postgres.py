"""A private PostgreSQL cluster a test owns (initdb, pg_ctl, run as the `postgres` user), so it
can restart or stop it under a running Berth without disturbing the shared server. Needs the
server binaries (Debian `postgresql`) and root; under CI a missing one fails, elsewhere skips."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.components import IN_CI


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or not shutil.which("runuser") or os.geteuid() != 0:
        message = "a private PostgreSQL cluster needs the server binaries (apt-get install postgresql) and root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root, port: int) -> None:
        self.bin, self.root, self.port = _pg_bin(), root, port
        self.data = root / "pgdata"
        root.mkdir(parents=True, exist_ok=True)
        shutil.chown(root, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", f"{self.bin}/{tool}", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "pg.log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            action,
            *extra,
        )


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and removed at the end."""
    # Somewhere the postgres user can reach (pytest's tmp_path is private to root).
    pg_root = Path(tempfile.mkdtemp(prefix="berth-pg-", dir="/var/tmp"))
    try:
        os.chmod(pg_root, 0o755)
        cluster = Cluster(pg_root / "cluster", _free_port())
        cluster.pg_ctl("start")
        try:
            yield cluster
        finally:
            try:
                cluster.pg_ctl("stop", "-m", "immediate")
            except subprocess.CalledProcessError:
                pass  # already stopped by the test
    finally:
        shutil.rmtree(pg_root, ignore_errors=True)
