"""Test-wide isolation: caches, run store and results go to a temporary folder, never the checkout."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_storage(tmp_path_factory):
    root = tmp_path_factory.mktemp("csnet-storage")
    saved = {k: os.environ.get(k) for k in ("CSNET_CACHE", "CSNET_RUNS", "CSNET_RESULTS", "MPLBACKEND")}
    os.environ["CSNET_CACHE"] = str(root / "cache")
    os.environ["CSNET_RUNS"] = str(root / "runs")
    os.environ["CSNET_RESULTS"] = str(root / "results")
    os.environ["MPLBACKEND"] = "Agg"
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def smoke_suite(_isolated_storage):
    """The whole notebook suite executed once at the smoke profile through the runner; the notebook
    tests read what it wrote (models land in the session's run store and are reused by later tests)."""
    from csnet import suite

    return suite.run_suite("smoke", results_root=_isolated_storage / "results", progress=False)
