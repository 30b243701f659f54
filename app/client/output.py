"""What the CLI prints: aligned tables and key/value blocks for people, JSON with `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence


def emit_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Iterable[Sequence], *, empty: str | None = None) -> None:
    rows = [["-" if v is None or v == "" else str(v) for v in row] for row in rows]
    if not rows and empty:
        print(empty, file=sys.stderr)
        return
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in pairs) + 1
    for key, value in pairs:
        print(f"{(key + ':').ljust(width)} {'-' if value is None or value == '' else value}")


def size(n) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def when(iso: str | None) -> str:
    """`2024-05-01T12:34:56.123456Z` -> `2024-05-01 12:34:56Z`."""
    if not iso:
        return "-"
    date, _, rest = iso.partition("T")
    return f"{date} {rest[:8]}Z" if rest else iso


def short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}"
