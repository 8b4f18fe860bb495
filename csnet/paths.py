"""Where the suite keeps its caches, trained runs and results.

Every location can be moved by an environment variable, so that a cluster job, a test or a second
checkout can point the suite elsewhere without touching code:

- ``CSNET_CACHE``: cached test sets and text embeddings (default ``<project>/.cache``);
- ``CSNET_RUNS``: the run store of trained models (default ``<CSNET_CACHE>/runs``);
- ``CSNET_RESULTS``: what the notebooks write (default ``<project>/results``).
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package was installed from (editable install) or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on first use."""
    root = Path(os.environ.get("CSNET_CACHE", project_root() / ".cache"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """The run store's root folder, created on first use."""
    override = os.environ.get("CSNET_RUNS")
    path = Path(override) if override else cache_dir("runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(*parts: str) -> Path:
    """A folder under the results root (not created: callers decide)."""
    return Path(os.environ.get("CSNET_RESULTS", project_root() / "results")).joinpath(*parts)
