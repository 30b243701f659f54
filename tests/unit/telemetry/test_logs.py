"""Logs: every record a JSON line with level, logger and time; request lines carry the listed
fields only, with the User-Agent cut short."""

from __future__ import annotations

import json
import logging
import types

import falcon.testing

from app.telemetry import logs


def test_records_are_json_lines(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("warning", "json")
        logging.getLogger("berth.test").warning("disk at %d%%", 91)
        logging.getLogger("berth.test").info("not shown")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "berth.test", "disk at 91%")
    assert "time" in record


def test_a_request_line_names_the_caller_and_cuts_a_long_user_agent():
    req = falcon.testing.create_req(
        method="PUT",
        path="/v2/a/manifests/x",
        query_string="token=secret",
        headers={"User-Agent": "x" * 1000, "Authorization": "Bearer secret"},
        remote_addr="10.1.2.3",
    )
    req.context.subject = types.SimpleNamespace(name="token:7")
    req.context.route = "oci.manifest"
    resp = falcon.Response()
    resp.status = falcon.HTTP_201
    record = logs.access_record(req, resp, 0.0123, 10, 0)
    assert record["status"] == 201 and record["route"] == "oci.manifest" and record["subject"] == "token:7"
    assert record["duration_ms"] == 12.3 and record["client_ip"] == "10.1.2.3"
    assert len(record["user_agent"]) == logs.USER_AGENT_LIMIT
    assert "secret" not in json.dumps(record)


def test_a_request_without_a_route_or_user_agent():
    req = falcon.testing.create_req(path="/nowhere", headers={"User-Agent": ""})
    resp = falcon.Response()
    resp.status = falcon.HTTP_404
    record = logs.access_record(req, resp, 0, 0, 0)
    assert (record["route"], record["user_agent"], record["subject"]) == ("unmatched", None, None)
