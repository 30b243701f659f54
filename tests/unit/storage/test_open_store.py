import pytest

from app.config import Settings
from app.storage import open_store
from app.storage.filesystem import FilesystemStore


def test_file_urls_open_the_filesystem_store(tmp_path):
    store = open_store(f"file://{tmp_path}/blobs")
    assert isinstance(store, FilesystemStore) and store.root == (tmp_path / "blobs").resolve()
    assert store.signed_url("1/sha256/ab/" + "ab" * 32, __import__("datetime").timedelta(minutes=1)) is None


@pytest.mark.parametrize(
    "url, message",
    [
        ("s3://bucket/x", "unsupported BERTH_STORAGE_URL"),
        ("/just/a/path", "unsupported BERTH_STORAGE_URL"),
        ("file://", "names no directory"),
        ("gs:///prefix", "names no bucket"),
        ("gs://bucket/p?colour=blue", "unknown option"),
        ("gs://bucket/p?retry_timeout=soon", "retry_timeout must be a number"),
    ],
)
def test_bad_storage_urls_are_explained(url, message):
    with pytest.raises(SystemExit, match=message):
        open_store(url)


def test_storage_redirect_setting(monkeypatch):
    monkeypatch.delenv("BERTH_STORAGE_REDIRECT", raising=False)
    assert Settings.load().storage_redirect is False
    monkeypatch.setenv("BERTH_STORAGE_REDIRECT", "on")
    assert Settings.load().storage_redirect is True
