"""Real components a test needs. Under CI (CI=true) a missing one fails the test; elsewhere it
skips, with the command that installs it."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed: {install}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
