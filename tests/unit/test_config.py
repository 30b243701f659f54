import os
from pathlib import Path

import pytest

from app.config import Settings, available_cpus, parse_workers


def test_defaults_live_under_the_data_dir(monkeypatch, tmp_path):
    for name in ("BERTH_DATA_DIR", "BERTH_DATABASE_URL", "BERTH_STORAGE_URL", "BERTH_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.load(data_dir=tmp_path)
    assert s.port == 5000 and s.host == "127.0.0.1"
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'berth.db'}"
    assert s.storage_url == f"file://{tmp_path.resolve() / 'storage'}"


def test_environment_then_flags(monkeypatch):
    monkeypatch.setenv("BERTH_PORT", "6000")
    monkeypatch.setenv("BERTH_DATA_DIR", "/srv/berth")
    monkeypatch.setenv("BERTH_THREADS", "4")
    s = Settings.load()
    assert (s.port, s.data_dir, s.threads) == (6000, Path("/srv/berth"), 4)
    assert Settings.load(port=7000).port == 7000


def test_secret_not_in_repr(monkeypatch):
    monkeypatch.setenv("BERTH_BOOTSTRAP_TOKEN", "berth_supersecret")
    assert "supersecret" not in repr(Settings.load())


def _cgroup(tmp_path, own: str, limits: dict[str, str]):
    """A cgroup v2 tree under tmp_path: /proc/self/cgroup names `own`; `limits` maps a cgroup
    path ("" for the root) to its cpu.max."""
    root = tmp_path / "cgroup"
    for path, cpu_max in limits.items():
        (root / path).mkdir(parents=True, exist_ok=True)
        (root / path / "cpu.max").write_text(cpu_max + "\n")
    (root / own.lstrip("/")).mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return {"cgroup_root": root, "proc_cgroup": proc}


def test_auto_workers_are_the_cpus_this_process_may_run_on_or_its_cgroup_quota_rounded_up(tmp_path):
    mine = len(os.sched_getaffinity(0))
    assert available_cpus(**_cgroup(tmp_path / "a", "/", {"": "max 100000"})) == mine
    assert available_cpus(**_cgroup(tmp_path / "b", "/", {"": "50000 100000"})) == 1  # half a CPU: one
    assert available_cpus(**_cgroup(tmp_path / "c", "/", {"": "150000 100000"})) == min(mine, 2)
    assert available_cpus(**_cgroup(tmp_path / "d", "/", {"": f"{(mine + 1) * 100000} 100000"})) == mine
    # A limit on a parent cgroup (a pod's, above its container's) holds too; the lowest wins.
    nested = {"kubepods/pod1": "100000 100000", "kubepods/pod1/ctr": "max 100000"}
    assert available_cpus(**_cgroup(tmp_path / "e", "/kubepods/pod1/ctr", nested)) == 1
    # No cgroup v2 (no "0::" line), or no cpu.max: the affinity alone.
    v1 = tmp_path / "v1"
    v1.write_text("4:memory:/x\n1:cpu:/\n")
    assert available_cpus(cgroup_root=tmp_path / "none", proc_cgroup=v1) == mine
    assert available_cpus(**_cgroup(tmp_path / "f", "/svc", {})) == mine


def test_auto_workers_follow_the_affinity(tmp_path):
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert available_cpus(**_cgroup(tmp_path, "/", {"": "max 100000"})) == 1
    finally:
        os.sched_setaffinity(0, before)


def test_workers_are_auto_by_default_a_number_or_a_clear_error(monkeypatch):
    monkeypatch.delenv("BERTH_WORKERS", raising=False)
    monkeypatch.delenv("BERTH_THREADS", raising=False)
    assert Settings.load().workers == available_cpus() == parse_workers("auto") == parse_workers(" AUTO ")
    monkeypatch.setenv("BERTH_WORKERS", "4")
    assert (Settings.load().workers, Settings.load().threads) == (4, 4)  # WORKER_THREADS each
    monkeypatch.setenv("BERTH_WORKERS", "2")
    assert (Settings.load().workers, Settings.load().threads) == (2, 4)  # not 16 split: 4 each
    monkeypatch.setenv("BERTH_WORKERS", "4")
    assert Settings.load(workers="auto").workers == available_cpus()  # the flag wins
    assert Settings.load(workers="1").threads == 16
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(SystemExit, match="use auto, or a number"):
            parse_workers(bad)
    monkeypatch.setenv("BERTH_WORKERS", "many")
    with pytest.raises(SystemExit, match="BERTH_WORKERS"):
        Settings.load()
