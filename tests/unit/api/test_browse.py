"""A tag as `GET .../repositories/{repo}/tags` shows it: its manifest's size and platforms."""

from __future__ import annotations

import json

from app.api.browse import render_tag
from app.db.models import Manifest, Registry, Repository, Tag
from app.services import browse
from tests.unit.api.conftest import ISO, T, in_order

IMAGE = "application/vnd.oci.image.manifest.v1+json"


def test_a_tag_with_its_manifest_and_sizes(org):
    repository = Repository.create(registry=Registry.create(org=org, name="r"), name="app")
    content = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": IMAGE,
            "config": {"digest": "sha256:" + "c" * 64, "size": 3},
            "layers": [{"digest": "sha256:" + "d" * 64, "size": 5}],
        }
    ).encode()
    manifest = Manifest.create(
        repository=repository, digest="sha256:" + "b" * 64, media_type=IMAGE, size=len(content), content=content
    )
    tag = Tag.create(repository=repository, name="v1", manifest=manifest, updated_at=T)
    assert in_order(
        render_tag(tag, browse.Sizes(repository)),
        {
            "name": "v1",
            "digest": "sha256:" + "b" * 64,
            "media_type": IMAGE,
            "artifact_type": None,
            "size": 8,
            "manifest_size": len(content),
            "platforms": [],
            "pushed_at": ISO,
        },
    )
