"""Per-process spool directories (app/server/spool_dirs.py) on the real filesystem: a sweep removes
a directory whose lock is free (its process died) and never one whose lock is held."""

from __future__ import annotations

import os
import time

from app.server import spool_dirs
from app.server.spool_dirs import ProcessSpool


def died(spool: ProcessSpool) -> None:
    """What kill -9 does to a process's spool: its lock is released, its files stay."""
    os.close(spool._lock_fd)
    spool._lock_fd = -1


def test_a_sweep_removes_the_directories_of_dead_processes_and_keeps_the_living(tmp_path):
    own, alive, dead = (ProcessSpool.claim(tmp_path) for _ in range(3))
    for spool in (own, alive, dead):
        (spool.path / "body-1").write_bytes(b"x" * 100)
    died(dead)
    assert spool_dirs.sweep(tmp_path, keep=own.path) == 1
    assert not dead.path.exists()
    assert (own.path / "body-1").exists() and (alive.path / "body-1").exists()
    alive.release()
    assert not alive.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [own.path.name]


def test_leftovers_go_only_once_they_are_old(tmp_path):
    staging = tmp_path / ".new-abc"
    staging.mkdir()
    legacy = tmp_path / "body-legacy"
    legacy.write_bytes(b"y")
    assert spool_dirs.sweep(tmp_path) == 0  # may still be in the making, or being written
    old = time.time() - 2 * spool_dirs.LEGACY_STALE_AFTER
    os.utime(staging, (old, old))
    os.utime(legacy, (old, old))
    assert spool_dirs.sweep(tmp_path) == 2
    assert list(tmp_path.iterdir()) == []
