"""Fixtures for the infrastructure tests: the CRD schemas beside the repository."""

from __future__ import annotations

import pytest

from tests.infra.schemas import CRD_DIR
from tests.support.components import IN_CI


@pytest.fixture(scope="session")
def crd_dir():
    if not any(CRD_DIR.glob("*/*.yaml")):
        message = (
            f"no CRD schemas in {CRD_DIR}: the workspace's shared/schemas/crds/ belongs beside "
            "the repository (or set BERTH_CRD_SCHEMAS)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CRD_DIR
