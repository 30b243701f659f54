"""Running out of disk: every shape a full disk takes (OSError, SQLite through peewee, PostgreSQL's
SQLSTATE, wrapped) is recognised and nothing else is; free space is measured on the nearest
existing directory; and readiness fails below the minimum."""

from __future__ import annotations

import errno
import sqlite3
import threading
from pathlib import Path

import peewee as pw
import pytest

from app.storage import capacity
from app.storage.capacity import FreeSpace


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as e:
            raise pw.OperationalError("wrapped") from e
    except pw.OperationalError as wrapped:
        return wrapped


class PgError(Exception):
    pgcode = "53100"


def test_full_disks_are_recognised_however_wrapped():
    full = OSError(errno.ENOSPC, "No space left on device")
    assert capacity.is_storage_full(full) and capacity.is_storage_full(OSError(errno.EDQUOT, "quota"))
    assert capacity.is_storage_full(_raised_from(full))
    assert capacity.is_storage_full(_raised_from(sqlite3.OperationalError("database or disk is full")))
    assert capacity.is_storage_full(_raised_from(PgError("could not extend file")))
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("cleaning up after the failed write failed too")  # noqa: B904 - the point
    except RuntimeError as implicit:
        assert capacity.is_storage_full(implicit)


def test_other_errors_are_not_a_full_disk():
    for error in (
        None,
        OSError(errno.EACCES, "denied"),
        ValueError("x"),
        _raised_from(sqlite3.OperationalError("locked")),
    ):
        assert not capacity.is_storage_full(error)
    looping = ValueError("a")
    looping.__context__ = ValueError("b")
    looping.__context__.__context__ = looping
    answers = []
    check = threading.Thread(target=lambda: answers.append(capacity.is_storage_full(looping)), daemon=True)
    check.start()
    check.join(10)
    assert answers == [False]  # a cycle ends


def test_free_space_is_measured_on_the_nearest_existing_directory(tmp_path):
    # The same filesystem; others write to it meanwhile, so the two readings may differ a little.
    assert abs(capacity.free_bytes(tmp_path / "not" / "yet") - capacity.free_bytes(tmp_path)) < 256 * 2**20
    assert capacity.free_bytes(tmp_path) > 0


def test_readiness_fails_below_the_minimum_and_never_without_one(tmp_path):
    assert FreeSpace([tmp_path], 0).shortfall() is None
    assert FreeSpace([tmp_path], 1).shortfall() is None
    message = FreeSpace([tmp_path, tmp_path], 2**62).shortfall()
    assert message is not None and "below BERTH_MIN_FREE_BYTES" in message and str(tmp_path) in message


@pytest.mark.parametrize(
    "url, extra",
    [
        ("file:///srv/blobs", [Path("/srv/blobs")]),
        ("FILE:///srv/blobs", [Path("/srv/blobs")]),
        ("gs://bucket/prefix", []),
        ("file://", []),
    ],
)
def test_the_watched_directories(url, extra):
    assert capacity.watched_paths(Path("/data"), url) == [Path("/data"), *extra]
