import json

import pytest

from app.services.manifests import parse_manifest
from app.spec import media_types as mt
from app.spec.errors import RegistryError

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def image(**extra):
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 2}],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def test_image_manifest_references():
    parsed = parse_manifest(mt.OCI_MANIFEST, image())
    assert parsed.blobs == [D1, D2] and parsed.children == []
    assert parsed.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_content_type_parameters_are_ignored():
    assert parse_manifest(mt.OCI_MANIFEST + "; charset=utf-8", image()).media_type == mt.OCI_MANIFEST


def test_subject_and_artifact_type():
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": D3, "size": 3}
    parsed = parse_manifest(mt.OCI_MANIFEST, image(subject=subject, artifactType="application/x.sig"))
    assert parsed.subject == D3 and parsed.artifact_type == "application/x.sig"


def test_non_distributable_layers_are_not_required():
    doc = json.loads(image())
    doc["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    assert parse_manifest(mt.OCI_MANIFEST, json.dumps(doc).encode()).blobs == [D1]


def test_index_children():
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": D1, "size": 1}],
        }
    ).encode()
    parsed = parse_manifest(mt.OCI_INDEX, body)
    assert parsed.children == [D1] and parsed.blobs == []


def test_oci_media_type_may_be_omitted_but_docker_may_not():
    doc = json.loads(image())
    del doc["mediaType"]
    assert parse_manifest(mt.OCI_MANIFEST, json.dumps(doc).encode()).media_type == mt.OCI_MANIFEST
    with pytest.raises(RegistryError):
        parse_manifest(mt.DOCKER_MANIFEST, json.dumps(doc).encode())


@pytest.mark.parametrize("content_type", [mt.OCI_INDEX, mt.DOCKER_MANIFEST, "application/json", None])
def test_mismatched_content_type(content_type):
    with pytest.raises(RegistryError) as e:
        parse_manifest(content_type, image())
    assert e.value.code == "MANIFEST_INVALID"
