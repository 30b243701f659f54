import pytest

from app.storage.base import blob_key
from app.storage.filesystem import FilesystemStore

UID = "0c7d1b8e-7a3e-4f55-9b7b-1d1f3b3a2a11"


def test_upload_append_truncates_torn_writes_and_commits(tmp_path):
    store = FilesystemStore(tmp_path)
    store.create_upload(UID)
    with store.open_upload_for_append(UID, 0) as f:
        f.write(b"hello world, torn tail")
    with store.open_upload_for_append(UID, 5) as f:  # only 5 bytes were acknowledged
        f.write(b"!")
    assert b"".join(store.read_upload(UID, 6)) == b"hello!"
    key = blob_key(1, "sha256:" + "ab" * 32)
    store.commit_upload(UID, key, 6)
    assert store.blob_size(key) == 6
    assert store.open_blob(key).read() == b"hello!"
    assert not (tmp_path / "uploads" / UID).exists()
    store.delete_blob(key)
    assert store.blob_size(key) is None


@pytest.mark.parametrize("bad", ["../x", "a" * 36, "../../../../etc/passwd"])
def test_upload_ids_cannot_escape(tmp_path, bad):
    with pytest.raises(ValueError):
        FilesystemStore(tmp_path).create_upload(bad)


@pytest.mark.parametrize("key", ["1/sha256/../../x", "../1/sha256/ab/abcd", "1/sha256/ab/../../../etc"])
def test_blob_keys_cannot_escape(tmp_path, key):
    with pytest.raises(ValueError):
        FilesystemStore(tmp_path).open_blob(key)


def test_blob_keys_are_per_registry():
    d = "sha256:" + "cd" * 32
    assert blob_key(1, d) != blob_key(2, d)
    assert blob_key(7, d) == f"7/sha256/cd/{'cd' * 32}"
