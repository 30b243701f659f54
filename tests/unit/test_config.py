from pathlib import Path

from app.config import Settings


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
