"""The data plane's OpenAPI document (app/oci/openapi.py) against the live server: schemathesis
sends thousands of generated requests, valid and invalid, to every `/v2` operation with a token
that can push, and checks that none is answered with a server error and every answer fits the
document (status, content type, headers, body)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app.oci.openapi import PATHS
from tests.integration.test_openapi import CHECKS
from tests.support.components import require_tool
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

OPERATIONS = sum(1 for item in PATHS.values() for method in item if method != "parameters")


@pytest.fixture
def seeded(tmp_path):
    srv = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    try:
        _, _, manifest = RegistryClient(srv.url, srv.session()).push_image("default/app", "v1")
        r = requests.post(
            f"{srv.url}/api/v1/orgs/default/tokens",
            headers={"Authorization": f"Bearer {srv.token}"},
            json={"name": "fuzz", "scope": "push", "registry": "default"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        pusher = srv.session(r.json()["token"])
        session = RegistryClient(srv.url, pusher).request("POST", "/v2/default/app/blobs/uploads/")
        assert session.status_code == 202, session.text
        # Fixed: the repository and one upload session, which a generated value would never name, and a
        # blob, so that ranges and 206s are exercised; references and every other digest are generated.
        yield (
            srv,
            r.json()["token"],
            {
                "name": "default/app",
                "session": session.headers["Docker-Upload-UUID"],
                "digest": manifest["layers"][0]["digest"],
            },
        )
    finally:
        srv.stop()


def test_the_document_is_served_and_valid_openapi_3_1(server):
    r = requests.get(f"{server.url}/api/v1/openapi/distribution.json", timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": server.url}]
    from openapi_spec_validator import validate

    validate(doc)


def test_schemathesis_finds_no_server_error_and_no_drift_on_the_data_plane(seeded, tmp_path):
    st = Path(sys.executable).parent / "st"  # schemathesis, from the test extras
    if not st.exists():
        require_tool("st", "pip install -e '.[test]' (schemathesis)")
    srv, token, values = seeded
    config = tmp_path / "schemathesis.toml"
    # Refusals the spec itself names for bad input beside schemathesis's defaults: 413 (too large),
    # 414 (too many `tag` parameters, spec.md "MAY return a 414") and 416 (a bad Content-Range).
    config.write_text(
        '[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "403", "404", "405", '
        '"406", "409", "413", "414", "415", "416", "422", "428", "429"]\n'
        "[parameters]\n" + "".join(f'"path.{k}" = {json.dumps(v)}\n' for k, v in values.items())
    )
    run = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{srv.url}/api/v1/openapi/distribution.json",
            "--auth",
            f"pusher:{token}",
            "--checks",
            ",".join(CHECKS),
            # No stateful phase: the document has no links to follow, and it would triple the time.
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "80",
            "--seed",
            "20261202",
            "--request-timeout",
            "30",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = run.stdout[-12000:]
    assert run.returncode == 0, summary
    assert f"Tested: {OPERATIONS}" in summary, summary
    made = re.search(r"(\d+) generated", summary)
    assert made and int(made.group(1)) >= 2000, summary  # thousands of requests, not a handful
    assert "UNKNOWN" not in srv.logs() and "Traceback" not in srv.logs()
