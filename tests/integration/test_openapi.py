"""The OpenAPI document against the live server: schemathesis generates requests from it
(valid and invalid) and checks that no response is a server error and every response fits the
document (status code, content type, headers, body schema)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app.api.openapi import PATHS
from tests.support.components import require_tool
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
]


@pytest.fixture
def seeded(tmp_path):
    srv = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    try:
        digest, _, _ = RegistryClient(srv.url, srv.session()).push_image("default/app", "v1")
        api = {"Authorization": f"Bearer {srv.token}"}
        base = f"{srv.url}/api/v1/orgs/default"
        assert (
            requests.put(f"{base}/members/alice", json={"role": "reader"}, headers=api, timeout=10).status_code == 201
        )
        op = requests.post(f"{base}/registries", json={"name": "seeded"}, headers=api, timeout=10).json()["operation"]
        yield (
            srv,
            {
                "org": "default",
                "registry": "default",
                "repository": "app",
                "digest": digest,
                "subject": "alice",
                "operation_id": op["id"],
            },
        )
    finally:
        srv.stop()


def test_document_is_served_and_valid_openapi_3_1(server):
    r = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": server.url}]
    from openapi_spec_validator import validate

    validate(doc)


def test_schemathesis_finds_nothing(seeded, tmp_path):
    st = Path(sys.executable).parent / "st"  # schemathesis, from the test extras
    if not st.exists():
        require_tool("st", "pip install -e '.[test]' (schemathesis)")
    srv, values = seeded
    config = tmp_path / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f'"path.{k}" = {json.dumps(v)}\n' for k, v in values.items()))
    run = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{srv.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {srv.token}",
            "--checks",
            ",".join(CHECKS),
            # Revoking its own token would only leave the run unauthenticated for the rest.
            "--exclude-operation-id",
            "revokeToken",
            "--max-examples",
            "25",
            "--seed",
            "20261129",
            "--request-timeout",
            "30",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = run.stdout[-8000:]
    assert run.returncode == 0, summary
    # Every operation of the document but revokeToken (excluded) and the document's own GET.
    operations = sum(
        1 for item in PATHS.values() for method in item if method in ("get", "put", "post", "patch", "delete")
    )
    assert f"Tested: {operations - 2}" in summary, summary
