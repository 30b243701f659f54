"""A garbage collection report as `POST .../gc` (and `berth gc --json`) shows it."""

from __future__ import annotations

from app.api.gc import render_report
from app.services import gc
from tests.unit.api.conftest import in_order


def test_a_report_with_what_went_and_the_bytes_freed():
    report = gc.Report(
        "r",
        dry_run=True,
        manifests=[{"repository": "app", "digest": "sha256:1"}],
        blobs=[{"digest": "sha256:2", "size": 7}, {"digest": "sha256:3", "size": 5}],
        orphan_files=2,
        expired_uploads=1,
    )
    assert in_order(
        render_report(report),
        {
            "registry": "r",
            "dry_run": True,
            "manifests_deleted": [{"repository": "app", "digest": "sha256:1"}],
            "blobs_deleted": [{"digest": "sha256:2", "size": 7}, {"digest": "sha256:3", "size": 5}],
            "bytes_freed": 12,
            "orphan_files_deleted": 2,
            "expired_uploads": 1,
        },
    )
