"""What the CLI prints for people: aligned tables (nothing on stdout for an empty one, so a
pipe sees no header), key/value blocks, sizes, times and short digests."""

from __future__ import annotations

import json

from app.client.output import emit_json, fields, short_digest, size, table, when


def test_formatting():
    assert size(0) == "0 B" and size(1536) == "1.5 KiB" and size(5 * 1024**3) == "5.0 GiB" and size(None) == "-"
    assert size(1023) == "1023 B" and size(2 * 1024**5) == "2048.0 TiB"
    assert when("2024-05-01T12:34:56.123456Z") == "2024-05-01 12:34:56Z" and when(None) == "-"
    assert when("2024-05-01") == "2024-05-01"
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab" and short_digest(None) == "-"


def test_a_table_aligns_its_columns_and_shows_blanks_as_dashes(capsys):
    table(["NAME", "SIZE"], [["a-long-name", 1], ["b", None]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["NAME         SIZE", "a-long-name  1", "b            -"]


def test_an_empty_table_says_so_on_stderr_only(capsys):
    table(["NAME"], [], empty="no registries")
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "no registries"


def test_fields_and_json(capsys):
    fields([("name", "r"), ("custom domain", None)])
    emit_json({"b": 1, "a": [1]})
    out = capsys.readouterr().out
    assert out.startswith("name:          r\ncustom domain: -\n")
    assert json.loads(out.split("\n", 2)[2]) == {"b": 1, "a": [1]}
